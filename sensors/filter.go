package sensors

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// calibrate returns a copy of v with each quantity's calibration applied,
// or ErrGarbage when there are no values or one is NaN or infinite. The
// copy keeps a driver that reuses its map from changing readings already
// handed on.
func calibrate(v Values, cal map[string]Calibration) (Values, error) {
	if len(v) == 0 {
		return nil, fmt.Errorf("%w: no values", ErrGarbage)
	}
	out := make(Values, len(v))
	var bad []string
	for q, x := range v {
		if c, ok := cal[q]; ok {
			x = c.Apply(x)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			bad = append(bad, fmt.Sprintf("%s=%v", q, x))
		}
		out[q] = x
	}
	if bad != nil {
		sort.Strings(bad)
		return nil, fmt.Errorf("%w: %v", ErrGarbage, bad)
	}
	return out, nil
}

// deadband drops readings that tell nothing new: every value within band
// of the last reading kept. One is kept at least every maxSilence anyway,
// so a flat signal still shows the sensor is alive. Silence is measured on
// the boot-time clock, which NTP steps do not move.
type deadband struct {
	band       float64
	maxSilence time.Duration

	last     Values
	lastMono time.Duration
}

func newDeadband(c Config) deadband {
	d := deadband{band: c.Deadband, maxSilence: c.MaxSilence}
	if d.band > 0 && d.maxSilence == 0 {
		d.maxSilence = DefaultMaxSilence
	}
	return d
}

// keep reports whether v, sampled at mono, is kept, and remembers it if so.
func (d *deadband) keep(v Values, mono time.Duration) bool {
	if d.band <= 0 {
		return true
	}
	if d.last != nil && mono-d.lastMono < d.maxSilence && !d.moved(v) {
		return false
	}
	d.last, d.lastMono = v, mono
	return true
}

// moved reports whether any quantity moved by band or more, or the set of
// quantities changed.
func (d *deadband) moved(v Values) bool {
	if len(v) != len(d.last) {
		return true
	}
	for q, x := range v {
		old, ok := d.last[q]
		if !ok || math.Abs(x-old) >= d.band {
			return true
		}
	}
	return false
}

// reset forgets the last kept reading: after a sensor is re-enabled the
// first reading is always kept.
func (d *deadband) reset() { d.last = nil }
