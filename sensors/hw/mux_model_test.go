package hw

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
)

// Two chips at one address behind two channels of one PCA9548: each
// read selects its own channel first.
func TestMuxModelChannels(t *testing.T) {
	h, bus, clock := modelHost(t)
	mux := chipmodel.NewMux()
	bus.Add(0x70, mux)
	a, b := chipmodel.NewBH1750(clock), chipmodel.NewBH1750(clock)
	a.SetLux(100)
	b.SetLux(200)
	mux.Add(1, 0x23, a)
	mux.Add(2, 0x23, b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	da, err := prepare(t, h, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23, "mux_channel": 1})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	db, err := prepare(t, h, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23, "mux_channel": 2})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 3 {
		for _, c := range []struct {
			d   sensors.Driver
			lux float64
		}{{da, 100}, {db, 200}} {
			v, err := c.d.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantValues(t, v, sensors.Values{"illuminance": c.lux}, 0.5)
		}
	}
}

// What config check refuses, and why: periph leaves a mux's channel
// selected, so a chip at the same address on the main bus, or behind a
// second mux, answers together with the one behind the first mux.
func TestMuxModelCollisionsConfigCheckRefuses(t *testing.T) {
	for _, c := range []struct {
		name  string
		other map[string]any
	}{
		{"main bus", map[string]any{"bus": "/dev/i2c-1", "address": 0x23}},
		{"second mux", map[string]any{"bus": "/dev/i2c-1", "address": 0x23, "mux_address": 0x71, "mux_channel": 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, bus, clock := modelHost(t)
			m70, m71 := chipmodel.NewMux(), chipmodel.NewMux()
			bus.Add(0x70, m70)
			bus.Add(0x71, m71)
			m70.Add(1, 0x23, chipmodel.NewBH1750(clock))
			m71.Add(0, 0x23, chipmodel.NewBH1750(clock))
			if c.name == "main bus" {
				bus.Add(0x23, chipmodel.NewBH1750(clock))
			}
			behind := map[string]any{"bus": "/dev/i2c-1", "address": 0x23, "mux_channel": 1}

			reg, err := sensors.NewRegistry(h.Kinds()...)
			if err != nil {
				t.Fatal(err)
			}
			cfgs := []sensors.Config{
				{Name: "behind", Driver: "bh1750", Interval: time.Minute, Options: behind},
				{Name: "other", Driver: "bh1750", Interval: time.Minute, Options: c.other},
			}
			if err := sensors.ValidateConfigs(reg, cfgs); err == nil {
				t.Fatal("config check accepted the pair")
			}

			// Opened anyway (the check bypassed), transfers reach both
			// chips once the mux channel is selected.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err1 := prepare(t, h, "bh1750", behind)(ctx)
			_, err2 := prepare(t, h, "bh1750", c.other)(ctx)
			if !errors.Is(err1, chipmodel.ErrCollision) && !errors.Is(err2, chipmodel.ErrCollision) {
				t.Fatalf("opens: %v, %v; want a collision", err1, err2)
			}
		})
	}
}
