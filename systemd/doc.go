// Package systemd tells the service manager how the agent is doing: the
// sd_notify protocol (READY, RELOADING, STOPPING, STATUS) and the watchdog,
// whose pings stop as soon as one of the agent's loops stops making
// progress, so that systemd restarts a wedged agent instead of trusting a
// process that is alive but no longer reading or delivering.
//
// The directory also holds the unit (kitd.service), the user and group
// declaration (kitd.sysusers), the udev rule that gives the i2c and gpio
// groups their devices on distributions without one (kitd.udev.rules), and
// install.sh, which installs all of it from a source tree.
//
// Nothing here reads the environment: the caller passes $NOTIFY_SOCKET,
// $WATCHDOG_USEC and $WATCHDOG_PID in, so tests and the demo never talk to
// a real service manager by accident.
//
// # More details
//
// The protocol is described in sd_notify(3) and sd_watchdog_enabled(3).
// systemd 253 and later want MONOTONIC_USEC next to RELOADING=1 (for
// Type=notify-reload); older versions ignore it.
package systemd
