// Package ads1x15 drives TI's ADS1115 (16-bit) and ADS1015 (12-bit)
// analog-to-digital converters over I2C, one single-ended channel per
// Dev, in single-shot mode.
//
// periph.io's ads1x15 starts a conversion and reads the result after a
// fixed sleep of one sample period. The datasheet allows the data rate to
// be 10 % slow (SBAS444D 7.5, "Data rate variation"), and a result read
// before the conversion ends is the previous conversion: with several
// channels in turn, another channel's voltage. This driver reads the
// result only once the chip says the conversion is done.
//
// # More details
//
// A read writes the config register (section 9.6.3) with OS=1 (start a
// single conversion), MUX=1xx (AINn against GND), the PGA range, MODE=1
// (single shot, power-down after it), the data rate and the comparator
// disabled. It waits one nominal sample period, then polls the config
// register until OS reads 1 ("device is not currently performing a
// conversion") and only then reads the conversion register. Each poll
// also checks that MUX, PGA and DR read back as written: a chip that
// reset (config 0x8583) or another master that wrote the register would
// otherwise hand over a conversion of the wrong input. The wait is
// bounded by the read's context and by twice the nominal period plus
// 2 ms (the datasheet's ±10 % with margin): a chip that never finishes
// is a NotReadyError, never a value.
//
// Writing OS=1 while a conversion runs "has no effect", so two users of
// one chip (two channels read concurrently) must not interleave: a Dev
// does no locking of its own; the caller serialises every Dev of one
// chip (package hw does so per bus and address).
//
// The conversion register is two's complement; the ADS1015's 12-bit
// code is left-justified (section 9.6.2 of SBAS473E). The full-scale
// codes (0x7FFF and 0x8000 on the ADS1115) mean the input is at or
// beyond the PGA's range; Read returns them, and the caller decides.
//
// # Datasheets
//
// ADS1115: https://www.ti.com/lit/ds/symlink/ads1115.pdf (SBAS444D)
//
// ADS1015: https://www.ti.com/lit/ds/symlink/ads1015.pdf (SBAS473E)
package ads1x15
