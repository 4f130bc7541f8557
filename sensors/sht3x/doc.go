// Package sht3x drives Sensirion's SHT30, SHT31 and SHT35 temperature and
// humidity sensors over I2C. periph.io has no driver for them.
//
// It uses single-shot measurements with clock stretching disabled: the
// host waits the datasheet's maximum measurement time, then reads. Clock
// stretching is avoided because the Raspberry Pi's I2C controller handles
// it badly (it cuts a stretched clock short and reads garbage).
//
// # More details
//
// Every 16-bit word the sensor sends is followed by a CRC-8 (polynomial
// 0x31, init 0xFF); a word whose CRC does not match is an error, never a
// reading. Opening the sensor sends a soft reset (so a re-open after
// failures starts from a known state) and reads the status register,
// which checks that an SHT3x, and not some other chip, answers.
//
// Temperature: T = -45 + 175 * S_T / 65535 °C; humidity: RH = 100 * S_RH
// / 65535 %RH (datasheet section 4.13).
//
// # Datasheets
//
// https://sensirion.com/media/documents/213E6A3B/63A5A569/Datasheet_SHT3x_DIS.pdf
package sht3x
