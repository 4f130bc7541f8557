package chipmodel

import (
	"errors"
	"sync"
	"time"
)

// BMx280 models a BME280 (chip id 0x60) or BMP280 (0x58) in forced mode
// (BME280 datasheet BST-BME280-DS002 sections 3.3, 5.3, 5.4 and 9.1):
// writing ctrl_meas with mode 01 starts one measurement, which takes the
// datasheet's maximum time for the oversampling set, during which status
// bit 3 (measuring) reads 1; then the data registers hold the raw values
// given with SetRaw, or the "skipped" value 0x80000 (temperature,
// pressure) or 0x8000 (humidity) for a quantity whose oversampling is 0,
// and the chip returns to sleep. ctrl_hum takes effect at the next
// ctrl_meas write. A reset (0xB6 to 0xE0, or Reset: a brown-out) returns
// ctrl_hum, ctrl_meas and config to 0x00 and the data registers to
// their skipped values.
type BMx280 struct {
	clock *Clock
	id    byte

	mu      sync.Mutex
	regs    [256]byte
	ptr     byte
	osrsH   byte // ctrl_hum as latched by the last ctrl_meas write
	doneAt  time.Duration
	busy    bool
	rawT    uint32
	rawP    uint32
	rawH    uint16
	resetIn bool
}

// NewBME280 returns a BME280 model at power-on with the calibration
// bytes of 0x88..0xA1 and 0xE1..0xE7.
func NewBME280(c *Clock, cal88 []byte, calE1 []byte) *BMx280 {
	return newBMx280(c, 0x60, cal88, calE1)
}

// NewBMP280 returns a BMP280 model at power-on with the calibration
// bytes of 0x88..0xA1.
func NewBMP280(c *Clock, cal88 []byte) *BMx280 { return newBMx280(c, 0x58, cal88, nil) }

func newBMx280(c *Clock, id byte, cal88, calE1 []byte) *BMx280 {
	m := &BMx280{clock: c, id: id}
	copy(m.regs[0x88:], cal88)
	copy(m.regs[0xE1:], calE1)
	m.regs[0xD0] = id
	m.reset()
	return m
}

// SetRaw sets the ADC values the next measurements produce.
func (m *BMx280) SetRaw(t, p uint32, h uint16) {
	m.mu.Lock()
	m.rawT, m.rawP, m.rawH = t, p, h
	m.mu.Unlock()
}

// Reset is a brown-out.
func (m *BMx280) Reset() {
	m.mu.Lock()
	m.reset()
	m.mu.Unlock()
}

// ResetDuringNextMeasurement makes the chip brown out while its next
// measurement runs: the measurement never completes, and the data
// registers hold their power-on (skipped) values.
func (m *BMx280) ResetDuringNextMeasurement() {
	m.mu.Lock()
	m.resetIn = true
	m.mu.Unlock()
}

func (m *BMx280) reset() {
	m.regs[0xF2], m.regs[0xF3], m.regs[0xF4], m.regs[0xF5] = 0, 0, 0, 0
	m.osrsH, m.busy = 0, false
	m.setData(0x80000, 0x80000, 0x8000)
}

func (m *BMx280) setData(t, p uint32, h uint16) {
	m.regs[0xF7], m.regs[0xF8], m.regs[0xF9] = byte(p>>12), byte(p>>4), byte(p<<4)
	m.regs[0xFA], m.regs[0xFB], m.regs[0xFC] = byte(t>>12), byte(t>>4), byte(t<<4)
	m.regs[0xFD], m.regs[0xFE] = byte(h>>8), byte(h)
}

// osrsCount is the number of samples of an osrs field (0: skipped).
func osrsCount(f byte) float64 {
	if f == 0 {
		return 0
	}
	return float64(int(1) << (min(f, 5) - 1))
}

func (m *BMx280) update() {
	if !m.busy || m.clock.Now() < m.doneAt {
		return
	}
	m.busy = false
	m.regs[0xF3] &^= 8
	m.regs[0xF4] &^= 3
	if m.resetIn {
		m.resetIn = false
		m.reset()
		return
	}
	t, p, h := m.rawT, m.rawP, m.rawH
	meas := m.regs[0xF4]
	if meas>>5 == 0 {
		t = 0x80000
	}
	if meas>>2&7 == 0 {
		p = 0x80000
	}
	if m.osrsH == 0 || m.id != 0x60 {
		h = 0x8000
	}
	m.setData(t, p, h)
}

// Tx implements Device.
func (m *BMx280) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.update()
	if len(w) == 0 {
		return errors.New("bmx280: a register address is needed")
	}
	if len(w)%2 == 0 {
		// Register, value pairs (datasheet 6.2.1).
		for i := 0; i < len(w); i += 2 {
			m.write(w[i], w[i+1])
		}
		return nil
	}
	if len(w) != 1 {
		return errors.New("bmx280: odd write")
	}
	m.ptr = w[0]
	for i := range r {
		r[i] = m.regs[m.ptr+byte(i)]
	}
	return nil
}

func (m *BMx280) write(reg, v byte) {
	switch reg {
	case 0xE0:
		if v == 0xB6 {
			m.reset()
		}
	case 0xF2:
		if m.id == 0x60 {
			m.regs[0xF2] = v & 7
		}
	case 0xF5:
		m.regs[0xF5] = v
	case 0xF4:
		m.regs[0xF4] = v
		m.osrsH = m.regs[0xF2]
		if v&3 == 1 || v&3 == 2 {
			// Datasheet 9.1, maximum measurement time.
			ms := 1.25 + 2.3*osrsCount(v>>5)
			if n := osrsCount(v >> 2 & 7); n > 0 {
				ms += 2.3*n + 0.575
			}
			if n := osrsCount(m.osrsH); n > 0 && m.id == 0x60 {
				ms += 2.3*n + 0.575
			}
			m.busy, m.doneAt = true, m.clock.Now()+time.Duration(ms*float64(time.Millisecond))
			m.regs[0xF3] |= 8
		}
	}
}
