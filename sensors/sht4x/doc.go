// Package sht4x drives Sensirion's SHT40, SHT41, SHT43 and SHT45
// temperature and humidity sensors over I2C. periph.io v3.7.4 has no
// driver for them.
//
// # More details
//
// Each command is one byte; a measurement is read after the datasheet's
// maximum duration, as two words each followed by a CRC-8 (polynomial
// 0x31, init 0xFF). Opening the sensor sends a soft reset and reads the
// 32-bit serial number, whose CRCs prove a Sensirion chip answers.
//
// Temperature: T = -45 + 175 * S_T / 65535 °C. Humidity: RH = -6 + 125 *
// S_RH / 65535 %RH, which can leave 0..100 at the extremes; the datasheet
// (section 4.6) says to crop it to 0..100, and so does this package.
//
// The heater commands are not used: they heat the sensor for up to a
// second at up to 200 mW and only help against condensation.
//
// # Datasheets
//
// https://sensirion.com/media/documents/33FD6951/662A593A/HT_DS_Datasheet_SHT4x.pdf
package sht4x
