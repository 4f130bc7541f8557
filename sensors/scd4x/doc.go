// Package scd4x drives Sensirion's SCD40 and SCD41 CO2 sensors over I2C
// in periodic measurement mode: a new CO2, temperature and humidity
// measurement every 5 seconds.
//
// periph.io's scd4x writes a command and reads its response in one
// combined transfer, with no pause between them, where the datasheet
// requires the command's execution time first (1 ms for
// get_data_ready_status, read_measurement and get_serial_number; the
// sensor does not acknowledge a read before). It also sleeps 5 s, then
// polls once a second on timers no deadline can interrupt. This driver
// writes each command, waits its execution time, then reads, and bounds
// every wait by the caller's context.
//
// # More details
//
// NewI2C sends stop_periodic_measurement (a restarted agent finds the
// sensor measuring, and then it accepts no other command) and waits its
// 500 ms, reads the serial number, whose CRCs prove an SCD4x answers,
// and starts periodic measurement. The first measurement is ready about
// 5 s after the start (datasheet 3.5.1), later ones every 5 s: Sense
// polls get_data_ready_status (ready when its low 11 bits are not all 0)
// every PollInterval until a measurement is ready, then reads it. The
// wait ends with the context, and in any case after MaxWait (12 s: two
// signal update intervals and margin) with a NotReadyError, so a sensor
// that stopped measuring (it reset to idle) is an error, not a hang.
//
// Every word the sensor sends is followed by a CRC-8 (package
// sensirion). CO2 is in ppm; temperature T = -45 + 175 × S / (2^16 - 1)
// °C; humidity RH = 100 × S / (2^16 - 1) %RH (datasheet 3.6.2, example:
// 0x01f4, 0x6667, 0x5eb9 is 500 ppm, 25 °C, 37 %RH).
//
// # Datasheets
//
// https://sensirion.com/media/documents/48C4B7FB/64C134E7/Sensirion_SCD4x_Datasheet.pdf
package scd4x
