package chipmodel

import (
	"errors"
	"math"
	"sync"
	"time"
)

// INA219 models the current monitor in continuous shunt-and-bus mode
// (datasheet SBOS448G section 8.6): conversions run back to back, each
// one (shunt then bus) taking the time its ADC settings give; at the end
// of each the shunt and bus registers update, the current and power
// registers are computed from them with the calibration register, CNVR
// (bus register bit 1) is set, and OVF (bit 0) is set when the current
// or power is out of range. CNVR clears when the power register is read
// or the config written. The shunt register clips at the PGA's full
// scale (±40 mV × 2^PG). A reset (RST bit, or Reset: a brown-out)
// restores the power-on registers: config 0x399F, calibration 0, so
// current and power read 0.
type INA219 struct {
	clock *Clock

	mu        sync.Mutex
	shuntV    float64
	busV      float64
	regs      [6]uint16
	ptr       byte
	epoch     time.Duration // start of the running conversion
	calWrites int
}

// NewINA219 returns a model at power-on.
func NewINA219(c *Clock) *INA219 {
	m := &INA219{clock: c}
	m.Reset()
	return m
}

// Reset restores the power-on registers.
func (m *INA219) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reset()
}

func (m *INA219) reset() {
	m.regs = [6]uint16{0x399F, 0, 0, 0, 0, 0}
	m.ptr = 0
	m.epoch = m.clock.Now()
}

// SetInputs sets the voltage across the shunt and on IN- (the bus).
func (m *INA219) SetInputs(shunt, bus float64) {
	m.mu.Lock()
	m.update()
	m.shuntV, m.busV = shunt, bus
	m.mu.Unlock()
}

// CalibrationWrites counts writes to the calibration register.
func (m *INA219) CalibrationWrites() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calWrites
}

// adcTime is the conversion time of a BADC/SADC setting (Table 5).
func adcTime(f uint16) time.Duration {
	if f&8 == 0 {
		return [4]time.Duration{84 * time.Microsecond, 148 * time.Microsecond, 276 * time.Microsecond, 532 * time.Microsecond}[f&3]
	}
	return [8]time.Duration{532 * time.Microsecond, 1060 * time.Microsecond, 2130 * time.Microsecond, 4260 * time.Microsecond,
		8510 * time.Microsecond, 17020 * time.Microsecond, 34050 * time.Microsecond, 68100 * time.Microsecond}[f&7]
}

func (m *INA219) period() time.Duration {
	cfg := m.regs[0]
	return adcTime(cfg>>7&15) + adcTime(cfg>>3&15)
}

// update completes the conversions that ended by now.
func (m *INA219) update() {
	if m.regs[0]&7 != 7 {
		return // only continuous shunt and bus is modelled
	}
	p := m.period()
	n := (m.clock.Now() - m.epoch) / p
	if n == 0 {
		return
	}
	m.epoch += n * p
	cfg := m.regs[0]
	full := 4000 << (cfg >> 11 & 3) // 40 mV × 2^PG in 10 µV
	shunt := max(min(math.Round(m.shuntV/10e-6), float64(full)), -float64(full))
	m.regs[1] = uint16(int16(shunt))
	maxBus := 16.0
	if cfg&0x2000 != 0 {
		maxBus = 32
	}
	busCount := uint16(math.Round(min(max(m.busV, 0), maxBus) / 4e-3))
	cur := shunt * float64(m.regs[5]) / 4096
	pow := math.Trunc(cur) * float64(busCount) / 5000
	ovf := uint16(0)
	if cur > 32767 || cur < -32768 || pow > 65535 {
		ovf = 1
	}
	m.regs[4] = uint16(int16(max(min(math.Trunc(cur), 32767), -32768)))
	m.regs[3] = uint16(min(math.Abs(math.Trunc(pow)), 65535))
	m.regs[2] = busCount<<3 | 2 | ovf
}

// Tx implements Device.
func (m *INA219) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.update()
	switch len(w) {
	case 0:
	case 1:
		if w[0] > 5 {
			return errors.New("ina219: no such register")
		}
		m.ptr = w[0]
	case 3:
		if w[0] > 5 {
			return errors.New("ina219: no such register")
		}
		m.ptr = w[0]
		v := uint16(w[1])<<8 | uint16(w[2])
		switch m.ptr {
		case 0:
			if v&0x8000 != 0 {
				m.reset()
				return nil
			}
			m.regs[0] = v
			m.regs[2] &^= 2
			m.epoch = m.clock.Now()
		case 5:
			m.regs[5] = v &^ 1 // bit 0 is read-only 0
			m.calWrites++
		default:
			return errors.New("ina219: read-only register")
		}
	default:
		return errors.New("ina219: write of pointer and one 16-bit register expected")
	}
	if len(r) == 0 {
		return nil
	}
	v := m.regs[m.ptr]
	if m.ptr == 3 {
		m.regs[2] &^= 2
	}
	for i := range r {
		if i%2 == 0 {
			r[i] = byte(v >> 8)
		} else {
			r[i] = byte(v)
		}
	}
	return nil
}
