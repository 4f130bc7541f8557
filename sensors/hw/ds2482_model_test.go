package hw

import (
	"context"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
)

// Sensors of different resolutions on one bridge share a conversion that
// lasts as long as the slowest needs.
func TestDS2482ModelMixedResolutions(t *testing.T) {
	h, bus, clock := modelHost(t)
	br := chipmodel.NewDS2482(clock)
	bus.Add(0x18, br)
	ids := []string{"28-000000000001", "28-000000000002"}
	br.Add(romAddress(ids[0]), 0x0197) // 25.4375
	br.Add(romAddress(ids[1]), 0x0198) // 25.5
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ds []sensors.Driver
	for i, res := range []int{9, 12} {
		opts := bridgedOpts(ids[i])
		opts["resolution"] = res
		d, err := prepare(t, h, "ds18b20", opts)(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ds = append(ds, d)
	}
	for i, want := range []float64{25.0, 25.5} {
		v, err := ds[i].Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantValues(t, v, sensors.Values{"temperature": want}, 0)
	}
}

// A sensor that browns out comes back at 12 bits (750 ms conversions)
// while the bridge waits for 9 (93.75 ms): its scratchpad then still
// holds the previous conversion, a plausible but stale temperature. The
// configuration byte in the scratchpad shows the reset: no read may
// return another conversion's temperature, and the resolution must be
// written again so that reads come right.
func TestDS2482ModelSensorResetToPowerOnResolution(t *testing.T) {
	h, bus, clock := modelHost(t)
	br := chipmodel.NewDS2482(clock)
	bus.Add(0x18, br)
	s := br.Add(romAddress(probeID), 0x0190) // 25.0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := bridgedOpts(probeID)
	opts["resolution"] = 9
	d, err := prepare(t, h, "ds18b20", opts)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	v, err := d.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, sensors.Values{"temperature": 25.0}, 0)

	br.Reset(s)
	good := 0
	for _, raw := range []int16{0x0200, 0x0300, 0x0400, 0x0500} {
		clock.Advance(time.Second) // the sensor's interval
		s.Next = raw
		v, err := d.Read(ctx)
		if err != nil {
			continue
		}
		if want := float64(raw) / 16; v["temperature"] != want {
			t.Errorf("read %v °C while the sensor is at %v °C (a stale conversion)", v["temperature"], want)
			continue
		}
		good++
	}
	if good < 2 {
		t.Errorf("%d good reads of 4 after the reset; the resolution was not restored", good)
	}
}
