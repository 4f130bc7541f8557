package sim

import (
	"hash/fnv"
	"math"
	"time"
)

// wave is a quantity's plausible operating range: base ± amp, clamped to
// what the physical quantity allows.
type wave struct {
	base, amp, lo, hi float64
}

// waveOf returns the waveform of a known quantity; the switch is the list
// of quantities the driver accepts.
func waveOf(quantity string) (wave, bool) {
	switch quantity {
	case "temperature": // °C, a room
		return wave{21, 4, -40, 85}, true
	case "humidity": // %RH
		return wave{45, 15, 0, 100}, true
	case "pressure": // hPa
		return wave{1013, 8, 300, 1100}, true
	case "moisture": // % of the dry..wet span
		return wave{50, 20, 0, 100}, true
	case "co2": // ppm, a ventilated room
		return wave{650, 200, 400, 5000}, true
	case "illuminance": // lx, indoors
		return wave{300, 250, 0, 100000}, true
	case "voltage": // V, a 12 V lead-acid battery
		return wave{12.6, 0.4, 0, 30}, true
	case "current": // A
		return wave{0.5, 0.3, 0, 10}, true
	case "power": // W
		return wave{6, 4, 0, 300}, true
	}
	return wave{}, false
}

// Quantities lists the quantities the sim driver can produce.
func Quantities() []string {
	return []string{"temperature", "humidity", "pressure", "moisture", "co2",
		"illuminance", "voltage", "current", "power"}
}

const (
	minPeriod  = 10 * time.Minute
	periodSpan = 50 * 60 // seconds added to minPeriod, at most
)

// Value is the simulated value of sensor's quantity at t, rounded to two
// decimals; NaN for a quantity the driver does not know.
func Value(sensor, quantity string, t time.Time) float64 {
	w, ok := waveOf(quantity)
	if !ok {
		return math.NaN()
	}
	h := fnv.New64a()
	h.Write([]byte(sensor))
	h.Write([]byte{0})
	h.Write([]byte(quantity))
	sum := h.Sum64()
	period := minPeriod + time.Duration(sum%periodSpan)*time.Second
	phase := float64((sum>>16)%3600) / 3600
	offset := (float64((sum>>32)%1000)/1000 - 0.5) * 0.2 * w.amp
	// Integer modulo keeps nanosecond precision that float64 seconds since
	// 1970 would lose.
	into := t.UnixNano() % int64(period)
	if into < 0 {
		into += int64(period)
	}
	x := float64(into)/float64(period) + phase
	v := w.base + offset + w.amp*math.Sin(2*math.Pi*x)
	v = min(max(v, w.lo), w.hi)
	return math.Round(v*100) / 100
}
