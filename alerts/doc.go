// Package alerts evaluates the config's `alerts:` rules on each reading, at
// the edge, so a kit says "soil too dry" or "CO2 too high" within one
// reading, whether or not the cloud is reachable, and without a storm of
// messages from a value hovering at its threshold.
//
// # The rule
//
// A rule watches one quantity of one sensor and has exactly one of above
// and below. For `below: 35, hysteresis: 3, for: 5m, repeat: 6h`:
//
//   - pending: a reading below 35 starts the `for` clock; a reading at or
//     above 35 before it runs out cancels it (a dip shorter than `for`
//     alerts nobody).
//   - firing: once readings have stayed below 35 for `for` (at once when
//     `for` is 0), one "firing" message. While firing, readings anywhere
//     below 38 (threshold + hysteresis) keep it firing, so a value
//     hovering at 35 sends nothing more; every `repeat` a reading that
//     finds it still firing sends "firing" again (0: never).
//   - resolved: the first reading above 38 sends one "resolved" message and
//     the rule starts over.
//
// `above` is the mirror image (firing above the threshold, resolved below
// threshold − hysteresis). Times are measured on the readings' boot-time
// clock (Reading.Mono), so NTP stepping the wall clock changes nothing.
// Rules are evaluated on readings only: a sensor that stops reading
// leaves its alerts as they are (the shadow shows the sensor failing),
// and a repeat falls due only when a reading comes.
//
// # Messages and delivery
//
// Each transition becomes an alert record (telemetry.MarshalAlert) that
// the agent appends to the same disk buffer as the readings, so an alert
// raised offline, or just before a kill -9, is delivered like any reading;
// the publisher sends alert records alone, ahead of readings, on
// mqtt.alert_topic.
//
// # State across restarts
//
// Which rules are firing, since when, when they last sent and the seq of
// each rule's last alert record are saved in a small JSON file
// (Evaluator's path: the buffer directory's alerts.json), written
// atomically (temporary file, fsync, rename, fsync of the directory) after
// the alert record is in the buffer, and only on a transition or a repeat,
// never per reading. A kill -9 between the append and the rename leaves
// the buffer ahead of the file: at start the agent reads the pending alert
// records and Restore applies those above the saved seq. After a restart
// a condition that still holds therefore sends no second "firing", and a
// rule that was firing sends its "resolved" when the value comes back.
// What is not saved: a pending `for` clock (after a restart the condition
// must hold for a whole `for` again).
//
// The repeat clock is restored from the wall time of the last message
// when the clock is synchronized, else it starts over at the restart.
// A rule removed from the config while firing is dropped with a warning
// in the log: no "resolved" follows for it.
package alerts
