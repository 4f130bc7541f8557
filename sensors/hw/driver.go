package hw

import (
	"context"
	"fmt"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/physic"
)

// chip is an opened I2C sensor: its gate and what reads and halts it.
type chip struct {
	gate *gate
	read func(ctx context.Context) (sensors.Values, error)
	halt func() error // nil when the chip needs nothing on close
}

func (c *chip) Read(ctx context.Context) (sensors.Values, error) {
	defer c.gate.bind(ctx)()
	v, err := c.read(ctx)
	if err != nil {
		return nil, c.gate.explain(err)
	}
	return v, nil
}

// Close halts the chip without a deadline of its own: the scheduler
// calls it once, after the last read returned.
func (c *chip) Close() error {
	if c.halt == nil {
		return nil
	}
	return c.halt()
}

// openChip opens t's bus behind a gate bound to ctx for the duration of
// newDev, the chip's constructor (chip id, calibration).
func (h *Host) openChip(ctx context.Context, t target, newDev func(ctx context.Context, g *gate) (*chip, error)) (sensors.Driver, error) {
	b, err := h.open(ctx, t)
	if err != nil {
		return nil, err
	}
	g := newGate(b)
	unbind := g.bind(ctx)
	defer unbind()
	c, err := newDev(ctx, g)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, g.explain(err))
	}
	c.gate = g
	return c, nil
}

// RangeError is a value outside the chip's datasheet operating range:
// what a half-working chip or a corrupted transfer produces.
type RangeError struct {
	Chip     string
	Quantity string
	Value    float64
	Min, Max float64
	Unit     string
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("%s %.4g %s outside the %s's range %g..%g %s", e.Quantity, e.Value, e.Unit, e.Chip, e.Min, e.Max, e.Unit)
}

type limit struct {
	quantity string
	min, max float64
	unit     string
}

// checkRanges returns a RangeError for the first value outside its limit.
func checkRanges(chipName string, v sensors.Values, limits ...limit) error {
	for _, l := range limits {
		x, ok := v[l.quantity]
		if ok && (x < l.min || x > l.max || x != x) {
			return &RangeError{Chip: chipName, Quantity: l.quantity, Value: x, Min: l.min, Max: l.max, Unit: l.unit}
		}
	}
	return nil
}

// Conversions from periph's fixed-point units to the wire's.
func celsius(t physic.Temperature) float64 { return t.Celsius() }

func hPa(p physic.Pressure) float64 { return float64(p) / float64(100*physic.Pascal) }

func percentRH(h physic.RelativeHumidity) float64 { return float64(h) / float64(physic.PercentRH) }
