package chipmodel

import (
	"errors"
	"sync"
	"time"
)

// BMP180 models Bosch's BMP180 (datasheet BST-BMP180-DS000-09 sections
// 3.3, 3.5 and 5): chip id 0x55 at 0xD0, the calibration EEPROM at
// 0xAA..0xBF, and ctrl_meas at 0xF4. Writing 0x2E starts a temperature
// conversion, 0x34+(oss<<6) a pressure conversion; while it runs, SCO
// (bit 5 of 0xF4) reads 1 and the result registers 0xF6..0xF8 still hold
// the previous result (power-on 0x80 0x00 0x00). A conversion takes the
// datasheet's maximum time (4.5 ms temperature; 4.5, 7.5, 13.5 or 25.5 ms
// pressure by oss) × Slow of model time; then UT is at 0xF6..0xF7, or UP
// << (8-oss) at 0xF6..0xF8, and SCO reads 0. A conversion command while
// one runs starts the new one instead. A soft reset (0xB6 to 0xE0) or
// Reset (a brown-out) returns 0xF4 and the result registers to power-on.
type BMP180 struct {
	clock *Clock

	mu sync.Mutex
	// Slow stretches every conversion: 1.1 is a chip 10 % slower than
	// the datasheet's maximum. Set before use; 0 means 1.
	Slow   float64
	regs   [256]byte
	ut     uint16
	up     uint32
	busy   bool
	doneAt time.Duration
	result [3]byte
}

// bmp180PressureTime is the datasheet's maximum pressure conversion time
// by oss (table 8).
var bmp180PressureTime = [4]time.Duration{4500 * time.Microsecond, 7500 * time.Microsecond, 13500 * time.Microsecond, 25500 * time.Microsecond}

// NewBMP180 returns a BMP180 model at power-on with the 22 calibration
// bytes of 0xAA..0xBF.
func NewBMP180(c *Clock, cal []byte) *BMP180 {
	m := &BMP180{clock: c}
	copy(m.regs[0xAA:0xC0], cal)
	m.regs[0xD0] = 0x55
	m.reset()
	return m
}

// SetRaw sets the uncompensated values the next conversions produce: UT
// (16 bits) and UP (16 to 19 bits, as the oss of the conversion gives).
func (m *BMP180) SetRaw(ut uint16, up uint32) {
	m.mu.Lock()
	m.ut, m.up = ut, up
	m.mu.Unlock()
}

// Reset is a brown-out.
func (m *BMP180) Reset() {
	m.mu.Lock()
	m.reset()
	m.mu.Unlock()
}

func (m *BMP180) reset() {
	m.regs[0xF4] = 0
	m.regs[0xF6], m.regs[0xF7], m.regs[0xF8] = 0x80, 0, 0
	m.busy = false
}

func (m *BMP180) update() {
	if !m.busy || m.clock.Now() < m.doneAt {
		return
	}
	m.busy = false
	m.regs[0xF4] &^= 0x20
	copy(m.regs[0xF6:0xF9], m.result[:])
}

// Tx implements Device.
func (m *BMP180) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.update()
	switch len(w) {
	case 1:
		for i := range r {
			r[i] = m.regs[w[0]+byte(i)]
		}
		return nil
	case 2:
		if len(r) != 0 {
			return errors.New("bmp180: a read after a register write")
		}
		m.write(w[0], w[1])
		return nil
	}
	return errors.New("bmp180: one register address, or one register and its value")
}

func (m *BMP180) write(reg, v byte) {
	switch reg {
	case 0xE0:
		if v == 0xB6 {
			m.reset()
		}
	case 0xF4:
		m.regs[0xF4] = v
		var d time.Duration
		switch {
		case v == 0x2E:
			d = 4500 * time.Microsecond
			m.result = [3]byte{byte(m.ut >> 8), byte(m.ut), m.regs[0xF8]}
		case v&0x3F == 0x34:
			oss := v >> 6
			d = bmp180PressureTime[oss]
			up := m.up << (8 - oss)
			m.result = [3]byte{byte(up >> 16), byte(up >> 8), byte(up)}
		default:
			// Not a conversion command: nothing starts.
			m.regs[0xF4] &^= 0x20
			m.busy = false
			return
		}
		slow := m.Slow
		if slow == 0 {
			slow = 1
		}
		m.busy, m.doneAt = true, m.clock.Now()+time.Duration(float64(d)*slow)
	}
}
