// Package w1 reads 1-Wire temperature sensors (DS18B20 and its family)
// through the Linux kernel's w1 sysfs files, which is how most Raspberry
// Pi kits run them (dtoverlay=w1-gpio).
//
// # More details
//
// Each device has a directory /sys/bus/w1/devices/<family>-<serial>. Its
// w1_slave file holds the raw scratchpad, the kernel's CRC verdict and the
// temperature in m°C:
//
//	72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
//	72 01 4b 46 7f ff 0e 10 57 t=23125
//
// Newer kernels also offer a temperature file holding only "23125". Read
// prefers w1_slave, because only the scratchpad lets it tell an all-zero
// reply from a real 0 °C, and uses temperature when w1_slave is missing.
//
// The temperature comes from the scratchpad, not from t=: bytes 0-1 are
// the raw value and the config byte (4) its resolution; at 9 to 11 bits
// the undefined low bits are masked (datasheet Figure 4), as the DS2482
// path does, where the kernel divides them in. t= must equal what the
// kernel computes from the same bytes, and line 2 must repeat line 1's
// scratchpad: a file cut short ("t=2312") or corrupted is ErrMismatch or
// ErrFormat, never a value. The temperature file has no scratchpad to
// check against.
//
// Reading either file makes the kernel convert that one sensor and block
// for the conversion (750 ms at 12 bits). The kernel can convert every
// sensor on a bus at once (therm_bulk_read on the bus master), but that
// file is writable by root only and the agent does not run as root, so
// this package converts per sensor: N sensors on one bus cost N
// conversions. A DS2482 bridge, driven by the agent itself, avoids that.
//
// Known bad readings are errors, never temperatures: a CRC the kernel
// flags (crc=.. NO), 85.000 °C (the power-on value: the sensor reset and
// did not convert, typically weak parasite power), 127.94 °C and an
// all-zero scratchpad (bad wiring), -0.0625 °C (an open data line reads
// all ones). A genuine reading of exactly 85.000 °C is dropped too; the
// next one (85.0625 or 84.9375) passes.
//
// # Datasheets
//
// https://www.analog.com/media/en/technical-documentation/data-sheets/DS18B20.pdf
// Kernel: Documentation/w1/slaves/w1_therm.rst
package w1
