package hw

import (
	"context"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
)

// The BH1750 starts in Power Down, where it accepts neither Reset nor a
// measurement command: every read powers it on first, one-time mode
// powers it down again, and Close leaves it in Power Down.
func TestBH1750ModelPowerSequence(t *testing.T) {
	h, bus, clock := modelHost(t)
	m := chipmodel.NewBH1750(clock)
	bus.Add(0x23, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := prepare(t, h, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, lx := range []float64{1000, 250, 28067} {
		m.SetLux(lx)
		v, err := d.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantValues(t, v, sensors.Values{"illuminance": lx}, 0.5)
		clock.Advance(time.Second) // the sensor's interval
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.Rejected(); n != 0 {
		t.Errorf("%d commands sent in a state that does not accept them", n)
	}
	if m.PoweredOn() {
		t.Error("left powered on after Close")
	}
}
