// Package chipmodel is test support: a fake I2C bus carrying small
// behavioural models of the chips kitd drives, so that tests exercise what
// playback cannot: a conversion that takes time, a ready bit, a chip that
// resets to its power-on registers, two sensors racing for one chip, and
// a PCA9548 multiplexer whose selected channel stays selected.
//
// # More details
//
// Model time is a Clock that moves only when a driver waits through the
// Clock's Sleep (hw.Host.Sleep in tests): a driver that waits on a real
// timer instead, or not at all, reads the chip before its conversion is
// done, exactly as it would on hardware whose clock runs 10 % slow. No
// model ever looks at the wall clock, so tests are as fast on a loaded
// machine or under qemu as on a workstation.
//
// The Bus serialises transactions as a real bus does. A transaction to an
// address nobody answers fails with EREMOTEIO, as Linux's i2c-dev reports
// a NACK; a transaction that more than one device answers (a device on
// the main bus and one behind a selected mux channel, or behind two muxes
// with channels selected) fails with ErrCollision, standing for the
// wired-AND garbage real hardware would return.
//
// Each model implements Device and documents the datasheet behaviour it
// covers; registers hold their power-on values until written, and Reset
// returns them there (a brown-out).
package chipmodel
