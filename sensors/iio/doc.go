// Package iio reads sensors the Linux kernel drives through its
// Industrial I/O subsystem, from the sysfs files under
// /sys/bus/iio/devices: the BeagleBone Black's 12-bit ADC (AIN0..AIN6,
// device TI-am335x-adc.0.auto), DHT11/DHT22 through the kernel's dht11
// driver, and any other IIO driver with voltage, temperature, humidity,
// pressure or illuminance channels.
//
// # More details
//
// Each device is a directory iio:deviceN whose file "name" names the
// driver's device (the number can change between boots; the name does
// not). A channel's files are in_<type><index>_<info>, e.g.
// in_voltage0_raw, in_temp_input, in_humidityrelative_input; a file
// without the index (in_voltage_scale) is shared by every channel of the
// type. Per the kernel's ABI (Documentation/ABI/testing/sysfs-bus-iio):
//
//	value = (raw + offset) * scale    in the type's unit, where _raw is given
//	value = input                     where _input is given
//
//	type              unit in sysfs      published as
//	voltage           mV                 voltage, V
//	temp              m°C                temperature, °C
//	humidityrelative  m%RH               humidity, %RH
//	pressure          kPa                pressure, hPa
//	illuminance       lx                 illuminance, lx
//
// A raw channel with no scale file is in the ADC's own counts. The
// BeagleBone's ti_am335x_adc driver gives none, so for a device named
// TI-am335x-adc* the scale is 1800/4095 mV per count (12 bits over its
// 1.8 V reference); for other such devices the scale option must say it.
// A raw value at the top of the ADC's range (from
// scan_elements/in_<channel>_type, e.g. "le:u12/16>>0", or 12 bits for the
// am335x) is an error: the input is at or beyond full scale (1.8 V on a
// BeagleBone, which more than that damages).
//
// # Failed reads
//
// Reading a dht11 channel makes the kernel run a measurement, and a good
// share of them fail (EIO on a checksum mismatch or a lost bit, ETIMEDOUT
// when the sensor does not answer, EAGAIN/EBUSY). Those are retried
// within the read's deadline after 0.5 s, 1 s, then every 2 s (a DHT22
// needs 2 s between measurements). Any other failure, a value that does
// not parse, or a relative humidity outside 0..100 % is an error at once.
// A failed read never yields values: every channel of a read comes from
// one successful pass.
//
// Reads of sysfs files block in the kernel and cannot be interrupted; the
// context is checked before each pass and bounds the waits between them.
//
// # References
//
// https://www.kernel.org/doc/Documentation/ABI/testing/sysfs-bus-iio
// https://www.kernel.org/doc/html/latest/driver-api/iio/index.html
// AM335x ADC: TI AM335x Technical Reference Manual (spruh73), chapter 12
// "Touchscreen Controller"; drivers/iio/adc/ti_am335x_adc.c.
// DHT11: drivers/iio/humidity/dht11.c.
package iio
