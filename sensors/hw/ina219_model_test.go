package hw

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
)

func openINA219Model(t *testing.T) (sensors.Driver, *chipmodel.INA219, *chipmodel.Clock, context.Context) {
	t.Helper()
	h, bus, clock := modelHost(t)
	m := chipmodel.NewINA219(clock)
	bus.Add(0x40, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	m.SetInputs(0.04, 12)
	d, err := prepare(t, h, "ina219", map[string]any{"bus": "/dev/i2c-1", "address": 0x40})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, m, clock, ctx
}

// A chip that reset lost its calibration and reads 0 A and 0 W: the read
// notices, writes the calibration again and waits for a conversion made
// with it.
func TestINA219ModelRecalibratesAfterReset(t *testing.T) {
	d, m, _, ctx := openINA219Model(t)
	// 40 mV across 0.1 Ω is 0.4 A; at 12 V, 4.8 W.
	want := sensors.Values{"voltage": 12, "current": 0.4, "power": 4.8}
	v, err := d.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, want, 0.002)
	m.Reset()
	v, err = d.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, want, 0.002)
	if n := m.CalibrationWrites(); n != 2 {
		t.Errorf("calibration written %d times, want 2 (open, after the reset)", n)
	}
}

// A shunt voltage at the PGA's full scale (±320 mV) is an overflow: the
// current is at least that, not that.
func TestINA219ModelShuntFullScale(t *testing.T) {
	d, m, clock, ctx := openINA219Model(t)
	for _, shunt := range []float64{0.5, 0.32, -0.4} {
		m.SetInputs(shunt, 12)
		clock.Advance(time.Second) // the sensor's interval
		v, err := d.Read(ctx)
		if err == nil || !strings.Contains(err.Error(), "overflow") {
			t.Errorf("shunt %g V: %v, %v; want an overflow", shunt, v, err)
		}
	}
	m.SetInputs(-0.1, 12)
	clock.Advance(time.Second)
	v, err := d.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, sensors.Values{"voltage": 12, "current": -1, "power": 12}, 0.005)
}
