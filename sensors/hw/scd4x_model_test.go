package hw

import (
	"context"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
)

// The sensor acknowledges a response only after the command's execution
// time (1 ms), and the first measurement is ready 5 s after the start:
// the first read waits for it by polling data-ready, and every command
// is written, waited for, then read.
func TestSCD4xModelFirstReadWaits(t *testing.T) {
	h, bus, clock := modelHost(t)
	m := chipmodel.NewSCD4x(clock)
	bus.Add(0x62, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := prepare(t, h, "scd4x", map[string]any{"bus": "/dev/i2c-1", "address": 0x62})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := range 3 {
		v, err := d.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		wantValues(t, v, sensors.Values{"co2": 500, "temperature": 25, "humidity": 37}, 0.01)
	}
	if n := m.EarlyReads(); n != 0 {
		t.Errorf("%d responses read before the command's execution time", n)
	}
}

// A sensor that reset to idle never has a measurement ready: the read
// fails (bounded), it does not wait forever nor return old values.
func TestSCD4xModelResetToIdle(t *testing.T) {
	h, bus, clock := modelHost(t)
	m := chipmodel.NewSCD4x(clock)
	bus.Add(0x62, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := prepare(t, h, "scd4x", map[string]any{"bus": "/dev/i2c-1", "address": 0x62})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Read(ctx); err != nil {
		t.Fatal(err)
	}
	m.Reset()
	if v, err := d.Read(ctx); err == nil {
		t.Fatalf("read %v from a sensor that is not measuring", v)
	}
}
