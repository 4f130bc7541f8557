// Package hw is kitd's hardware sensors: it maps the config's driver names
// (bme280, ds18b20, ads1115, ...) to sensors.Kinds built on periph.io's
// conn and, where periph's device drivers miss a datasheet requirement,
// on kitd's own (ads1x15, scd4x, sht3x, sht4x, and the INA219 and BH1750
// register access here), owns the shared handles (I2C buses, PCA9548
// multiplexers, DS2482 1-Wire bridges, ADS1x15 chips), and scans a board
// for devices (kitd sensors scan).
//
// # More details
//
// Prepare only checks options for form, so "kitd config check" passes on
// a laptop; periph's host drivers are initialised on the first Open, once.
// Buses, multiplexers and bridges are opened on first use and kept until
// Host.Close: sensors share them, and a sensor that is re-opened after
// failures re-reads its chip id and calibration on the same bus.
//
// Every read is bounded by its context. periph's drivers take no context,
// so each sensor sees the bus through a gate that fails every transfer
// once the read's context has ended: a driver that loops on a status
// register or sleeps between transfers stops at its next transfer instead
// of holding the bus after the scheduler gave up on it.
//
// Values are in the wire contract's units (°C, %RH, hPa, %, ppm, lx, V, A,
// W). A value outside the chip's datasheet operating range is an error,
// not a reading: it is what a half-working chip or a corrupted transfer
// produces.
//
// Every I2C kind claims its chip (sensors.Claim), so that config check
// refuses two sensors on one chip, an address used on the main bus and
// behind a PCA9548, the same address behind two PCA9548s on one bus
// (periph never deselects the other mux's channel; kitd refuses the
// config rather than switching every other mux off before each
// transfer) and a chip at a mux's address; see i2cClaim. The exceptions
// are the chips kitd shares itself: channels of one ADS1x15, each read
// holding the chip from conversion start to result, and thermometers
// behind one DS2482.
//
// DS18B20s behind one DS2482 share a converter: a read starts one "convert
// T" for every sensor on the bridge, and reads within a second of its end
// reuse it, so N sensors cost one 750 ms wait, not N. On the kernel's w1
// sysfs path every sensor converts on its own (see package w1 for why).
//
// # Datasheets
//
// Each driver's doc comment links its datasheet; the periph.io drivers
// used are documented at https://periph.io/device/.
package hw
