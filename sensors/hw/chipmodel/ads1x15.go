package chipmodel

import (
	"errors"
	"math"
	"sync"
	"time"
)

// ADS1x15 models an ADS1115 (16 bits) or ADS1015 (12 bits) in single-shot
// mode (datasheet SBAS444D section 9.6): the pointer register selects
// conversion (0) or config (1); writing config with OS=1 while idle starts
// one conversion of the channel, range and data rate written, which
// takes 1/DR × Slow of model time; while it runs OS reads 0 and the
// conversion register still holds the previous result (power-on 0).
// Writing config during a conversion changes the register but not the
// running conversion (OS=1 "has no effect" then), which is how one
// channel's result answers another channel's read.
type ADS1x15 struct {
	clock *Clock
	bits  int

	mu sync.Mutex
	// Slow stretches every conversion: 1.1 is a chip whose oscillator
	// runs 10 % slow, the datasheet's limit. Set before use; 0 means 1.
	Slow   float64
	inputs [4]float64
	cfg    uint16
	conv   uint16
	ptr    byte
	// running conversion
	busy      bool
	doneAt    time.Duration
	result    uint16
	ignored   int
	converted int
}

// NewADS1115 returns a 16-bit model at power-on.
func NewADS1115(c *Clock) *ADS1x15 { return newADS(c, 16) }

// NewADS1015 returns a 12-bit model at power-on.
func NewADS1015(c *Clock) *ADS1x15 { return newADS(c, 12) }

func newADS(c *Clock, bits int) *ADS1x15 {
	a := &ADS1x15{clock: c, bits: bits}
	a.Reset()
	return a
}

// Reset returns the registers to power-on: config 0x8583, conversion 0.
func (a *ADS1x15) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.conv, a.ptr, a.busy = 0x8583, 0, 0, false
}

// SetInput sets the voltage on AINch against GND.
func (a *ADS1x15) SetInput(ch int, volts float64) {
	a.mu.Lock()
	a.inputs[ch] = volts
	a.mu.Unlock()
}

// Ignored returns how many conversion starts arrived while a conversion
// was running (and so did not start one).
func (a *ADS1x15) Ignored() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ignored
}

// Conversions returns how many conversions have started.
func (a *ADS1x15) Conversions() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.converted
}

var (
	ads1115Rates = [8]float64{8, 16, 32, 64, 128, 250, 475, 860}
	ads1015Rates = [8]float64{128, 250, 490, 920, 1600, 2400, 3300, 3300}
	adsScales    = [8]float64{6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256}
)

func (a *ADS1x15) update() {
	if a.busy && a.clock.Now() >= a.doneAt {
		a.busy = false
		a.conv = a.result
	}
}

// Tx implements Device.
func (a *ADS1x15) Tx(w, r []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.update()
	switch len(w) {
	case 0:
	case 1:
		a.ptr = w[0] & 3
	case 3:
		a.ptr = w[0] & 3
		v := uint16(w[1])<<8 | uint16(w[2])
		if a.ptr == 1 {
			a.writeConfig(v)
		}
	default:
		return errors.New("ads1x15: write of pointer and one 16-bit register expected")
	}
	if len(r) == 0 {
		return nil
	}
	var v uint16
	switch a.ptr {
	case 0:
		v = a.conv
	case 1:
		v = a.cfg &^ 0x8000
		if !a.busy {
			v |= 0x8000
		}
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

func (a *ADS1x15) writeConfig(v uint16) {
	a.cfg = v &^ 0x8000
	if v&0x8000 == 0 || v&0x0100 == 0 {
		return
	}
	if a.busy {
		a.ignored++
		return
	}
	a.converted++
	rates := ads1115Rates
	if a.bits == 12 {
		rates = ads1015Rates
	}
	slow := a.Slow
	if slow == 0 {
		slow = 1
	}
	t := time.Duration(float64(time.Second) / rates[v>>5&7] * slow)
	a.busy, a.doneAt = true, a.clock.Now()+t
	// Only single-ended inputs (MUX 100..111) are modelled; differential
	// pairs read 0 V.
	var in float64
	if mux := v >> 12 & 7; mux >= 4 {
		in = a.inputs[mux-4]
	}
	full := float64(int(1) << (a.bits - 1))
	code := math.Round(in / adsScales[v>>9&7] * full)
	code = max(min(code, full-1), -full)
	a.result = uint16(int16(code) << (16 - a.bits))
}
