// Package telemetry holds the Reading that flows from sensors through the
// buffer to the broker, its compact on-disk encoding, and its wire (JSON)
// encodings as DESIGN.md's wire contract fixes them.
package telemetry

import "time"

// ClockState says how far the reading's timestamp can be trusted.
type ClockState uint8

const (
	// ClockSynced: the system clock was synchronized when the sample was taken.
	ClockSynced ClockState = iota
	// ClockUnsynced: the system clock was not synchronized (a Pi with no RTC
	// before NTP); the timestamp may be far off.
	ClockUnsynced
	// ClockCorrected: taken unsynced, re-stamped from the monotonic clock
	// after the system clock synced.
	ClockCorrected
)

// String is the wire form of the state ("" for synced, which is not sent).
func (c ClockState) String() string {
	switch c {
	case ClockUnsynced:
		return "unsynced"
	case ClockCorrected:
		return "corrected"
	}
	return ""
}

// Reading is one sample of one sensor.
type Reading struct {
	Sensor string
	// Time is the system (wall) clock at sample time.
	Time time.Time
	// Clock tells whether Time came from a synchronized clock.
	Clock ClockState
	// Boot identifies the boot the reading was taken in, and Mono is the
	// boot-time clock (monotonic, counts suspend) at sample time: together
	// they let a reading taken with an unsynced clock be re-stamped later in
	// the same boot.
	Boot uint64
	Mono time.Duration
	// Values maps quantity names (temperature, humidity, ...) to numbers in
	// the wire contract's units.
	Values map[string]float64
}

// Clock is the system clock as readings are stamped with it: by the
// scheduler when it takes a reading, by the publisher when it re-stamps one
// taken before NTP synced, by the agent for gap records. clock.System
// implements it. It is declared here, once, because all three stamp the
// same fields of a Reading.
type Clock interface {
	// Now is the wall clock, stamped on each reading.
	Now() time.Time
	// Mono is the boot-time clock, stamped on each reading so an unsynced
	// timestamp can be corrected later; the deadband's silence uses it too.
	Mono() time.Duration
	// Boot identifies this boot.
	Boot() uint64
	// Synced reports whether Now can be trusted.
	Synced() bool
}
