// Package sensirion holds what Sensirion's I2C sensors (SHT3x, SHT4x, SCD4x)
// share: 16-bit words each followed by a CRC-8, and the conversion of the
// raw temperature and humidity ticks.
//
// # Datasheets
//
// SHT3x-DIS, section 4.12 "Checksum Calculation":
// https://sensirion.com/media/documents/213E6A3B/63A5A569/Datasheet_SHT3x_DIS.pdf
package sensirion

import (
	"context"
	"fmt"
	"github.com/kitd-dev/kitd/internal/wait"
	"time"
)

// CRC8 is the checksum Sensirion appends to every 16-bit word: polynomial
// 0x31 (x^8 + x^5 + x^4 + 1), initial value 0xFF, no reflection, no final
// XOR. The datasheet's example: CRC8(0xBE, 0xEF) = 0x92.
func CRC8(data []byte) byte {
	crc := byte(0xFF)
	for _, b := range data {
		crc ^= b
		for range 8 {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x31
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// CRCError is returned when a word's checksum does not match: a loose
// wire, noise, or a read that ended early and left the bus at 0xFF.
type CRCError struct {
	Word       int  // index of the word in the response
	Received   byte // checksum sent by the sensor
	Calculated byte // checksum of the data bytes received
}

func (e *CRCError) Error() string {
	return fmt.Sprintf("word %d: CRC 0x%02X, want 0x%02X", e.Word, e.Received, e.Calculated)
}

// Words checks and decodes a response of 3-byte groups (MSB, LSB, CRC).
func Words(b []byte) ([]uint16, error) {
	if len(b)%3 != 0 {
		return nil, fmt.Errorf("response of %d bytes is not a whole number of words", len(b))
	}
	out := make([]uint16, len(b)/3)
	for i := range out {
		g := b[i*3 : i*3+3]
		if c := CRC8(g[:2]); c != g[2] {
			return nil, &CRCError{Word: i, Received: g[2], Calculated: c}
		}
		out[i] = uint16(g[0])<<8 | uint16(g[1])
	}
	return out, nil
}

// Temperature converts raw ticks to °C: T = -45 + 175 * S / (2^16 - 1),
// the formula of the SHT3x, SHT4x and SCD4x datasheets.
func Temperature(ticks uint16) float64 {
	return -45 + 175*float64(ticks)/65535
}

// Sleep waits d or until ctx ends: the measurement waits of these sensors
// are where a read spends its time, so that is where it must notice its
// deadline.
func Sleep(ctx context.Context, d time.Duration) error { return wait.Sleep(ctx, d) }
