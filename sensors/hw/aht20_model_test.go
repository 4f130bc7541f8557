package hw

import (
	"context"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
)

// The AHT20 shows busy after a trigger: the read polls until it is not,
// and a chip that lost its calibration in a power cycle is an error, not
// a reading.
func TestAHT20ModelBusyAndReset(t *testing.T) {
	h, bus, _ := modelHost(t)
	m := chipmodel.NewAHT20()
	bus.Add(0x38, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := prepare(t, h, "aht20", map[string]any{"bus": "/dev/i2c-1", "address": 0x38})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	v, err := d.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, sensors.Values{"temperature": 19.445800781, "humidity": 45.82824}, 1e-6)
	m.Reset()
	if v, err := d.Read(ctx); err == nil {
		t.Fatalf("read %v from an uncalibrated chip", v)
	}
}
