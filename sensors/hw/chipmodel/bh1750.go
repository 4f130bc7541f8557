package chipmodel

import (
	"errors"
	"math"
	"sync"
	"time"
)

// BH1750 models the BH1750FVI ambient light sensor (datasheet
// 2011.11 - Rev.D, instruction set p.5 and the state chart of the
// measurement procedure): it powers up in Power Down; Power On (0x01)
// waits for a measurement command; a measurement command (0x10..0x13,
// 0x20..0x23) is accepted in Power On only and sets the data register
// after its measurement time (one-time H: 120 ms), after which a one-time
// mode returns to Power Down; Reset (0x07) clears the data register and
// is "not acceptable in Power Down mode"; Power Down (0x00) stops. The
// model acknowledges a command it does not accept (the chip gives no
// sign) and counts it.
type BH1750 struct {
	clock *Clock

	mu       sync.Mutex
	on       bool
	oneTime  bool
	busy     bool
	doneAt   time.Duration
	data     uint16
	lux      float64
	rejected int
}

// NewBH1750 returns a sensor in Power Down.
func NewBH1750(c *Clock) *BH1750 { return &BH1750{clock: c} }

// SetLux sets the light the sensor sees.
func (b *BH1750) SetLux(lx float64) {
	b.mu.Lock()
	b.lux = lx
	b.mu.Unlock()
}

// Rejected counts commands sent in a state that does not accept them.
func (b *BH1750) Rejected() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rejected
}

// PoweredOn reports whether the sensor is out of Power Down.
func (b *BH1750) PoweredOn() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.update()
	return b.on
}

// Reset is a power cycle: Power Down, data register 0.
func (b *BH1750) Reset() {
	b.mu.Lock()
	b.on, b.busy, b.data = false, false, 0
	b.mu.Unlock()
}

func (b *BH1750) update() {
	if !b.busy || b.clock.Now() < b.doneAt {
		return
	}
	b.busy = false
	b.data = uint16(min(math.Round(b.lux*1.2), 65535))
	if b.oneTime {
		b.on = false
	}
}

// Tx implements Device.
func (b *BH1750) Tx(w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.update()
	if len(w) > 1 {
		return errors.New("bh1750: one instruction byte per write")
	}
	if len(w) == 1 {
		switch c := w[0]; {
		case c == 0x00:
			b.on, b.busy = false, false
		case c == 0x01:
			b.on = true
		case c == 0x07:
			if !b.on {
				b.rejected++
			} else {
				b.data = 0
			}
		case c>>4 == 1 || c>>4 == 2:
			if !b.on {
				b.rejected++
				break
			}
			t := 120 * time.Millisecond
			if c&3 == 3 {
				t = 16 * time.Millisecond
			}
			b.busy, b.doneAt, b.oneTime = true, b.clock.Now()+t, c>>4 == 2
		default:
			return errors.New("bh1750: unknown instruction")
		}
	}
	for i := range r {
		if i%2 == 0 {
			r[i] = byte(b.data >> 8)
		} else {
			r[i] = byte(b.data)
		}
	}
	return nil
}
