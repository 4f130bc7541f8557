package hw

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kitdclock "github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
	"github.com/kitd-dev/kitd/telemetry"
)

// A conversion is read only once the OS bit says it is done, even from a
// chip whose data rate is 10 % slow (the datasheet's tolerance): a read
// after a fixed sleep of 1/DR gets the previous conversion (power-on 0).
func TestADS1115ModelWaitsForConversion(t *testing.T) {
	for _, name := range []string{"ads1115", "ads1015"} {
		t.Run(name, func(t *testing.T) {
			h, bus, clock := modelHost(t)
			adc := chipmodel.NewADS1115(clock)
			if name == "ads1015" {
				adc = chipmodel.NewADS1015(clock)
			}
			adc.Slow = 1.1
			bus.Add(0x48, adc)
			open := prepare(t, h, name, map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "channel": 1})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d, err := open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, in := range []float64{1.65, 0.5, 3.0} {
				adc.SetInput(1, in)
				v, err := d.Read(ctx)
				if err != nil {
					t.Fatalf("input %g V: %v", in, err)
				}
				wantValues(t, v, sensors.Values{"voltage": in}, 0.002)
			}
		})
	}
}

// A chip that never finishes a conversion (its OS bit stays 0) fails the
// read by its deadline, never returns the stale conversion register.
func TestADS1115ModelNeverReady(t *testing.T) {
	h, bus, clock := modelHost(t)
	adc := chipmodel.NewADS1115(clock)
	adc.Slow = 1e6 // 8 SPS × 10^6: never, in a test's model time
	bus.Add(0x48, adc)
	v, err := openRead(t, prepare(t, h, "ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "data_rate": 8}))
	if err == nil {
		t.Fatalf("read %v from a chip that never converted", v)
	}
}

// Two sensors on channels of one chip: while one read's conversion runs,
// the other read must wait for the chip, not write its own channel into
// the config register (the chip would ignore that start, and the second
// read would take the first one's conversion as its own).
func TestADS1115ModelChannelsSerialised(t *testing.T) {
	h, bus, clock := modelHost(t)
	adc := chipmodel.NewADS1115(clock)
	bus.Add(0x48, adc)
	adc.SetInput(0, 1.0)
	adc.SetInput(1, 2.0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	open0 := prepare(t, h, "ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "channel": 0})
	open1 := prepare(t, h, "ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "channel": 1})
	d0, err := open0(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d0.Close()
	d1, err := open1(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d1.Close()

	// The first wait of channel 0's read runs channel 1's whole read, as
	// the scheduler's other goroutine would. Channel 1 either waits for
	// the chip (and gives up at its short deadline) or reads: it must
	// never read channel 0's voltage.
	// A flag, not a sync.Once: without the chip lock, channel 1's read
	// sleeps inside channel 0's first sleep, and must not wait for it.
	var started atomic.Bool
	var v1 sensors.Values
	var err1 error
	h.Sleep = func(ctx context.Context, d time.Duration) error {
		if started.CompareAndSwap(false, true) {
			c1, cancel1 := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel1()
			v1, err1 = d1.Read(c1)
		}
		return clock.Sleep(ctx, d)
	}
	v0, err := d0.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v0, sensors.Values{"voltage": 1.0}, 0.001)
	if err1 == nil {
		wantValues(t, v1, sensors.Values{"voltage": 2.0}, 0.001)
	}
	if n := adc.Ignored(); n != 0 {
		t.Errorf("%d conversion starts were written while a conversion ran", n)
	}
}

// kitd sensors read reads every sensor at once: four soil probes on A0..A3
// of one chip each get their own channel.
func TestADS1115ModelReadOnceFourChannels(t *testing.T) {
	h, bus, clock := modelHost(t)
	adc := chipmodel.NewADS1115(clock)
	bus.Add(0x48, adc)
	reg, err := sensors.NewRegistry(h.Kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []sensors.Config
	for ch := range 4 {
		adc.SetInput(ch, 0.5*float64(ch+1))
		cfgs = append(cfgs, sensors.Config{
			Name: fmt.Sprintf("soil-%d", ch), Driver: "ads1115", Interval: time.Second,
			Options: map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "channel": ch},
		})
	}
	if err := sensors.ValidateConfigs(reg, cfgs); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		for i, r := range sensors.ReadOnce(context.Background(), reg, cfgs) {
			if r.Err != nil {
				t.Fatalf("%s: %v", r.Name, r.Err)
			}
			wantValues(t, r.Values, sensors.Values{"voltage": 0.5 * float64(i+1)}, 0.001)
		}
	}
	if n := adc.Ignored(); n != 0 {
		t.Errorf("%d conversion starts were written while a conversion ran", n)
	}
}

// kitd run: the scheduler reads four probes on A0..A3 of one chip, each
// on its own goroutine; every reading is its own channel's voltage.
func TestADS1115ModelSchedulerFourChannels(t *testing.T) {
	h, bus, clock := modelHost(t)
	adc := chipmodel.NewADS1115(clock)
	bus.Add(0x48, adc)
	reg, err := sensors.NewRegistry(h.Kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []sensors.Config
	want := map[string]float64{}
	for ch := range 4 {
		adc.SetInput(ch, 0.5*float64(ch+1))
		name := fmt.Sprintf("soil-%d", ch)
		want[name] = 0.5 * float64(ch+1)
		cfgs = append(cfgs, sensors.Config{
			Name: name, Driver: "ads1115", Interval: 100 * time.Millisecond,
			Options: map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "channel": ch},
		})
	}
	var mu sync.Mutex
	count := map[string]int{}
	var bad []string
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sink := func(r telemetry.Reading) error {
		mu.Lock()
		defer mu.Unlock()
		if v := r.Values["voltage"]; v < want[r.Sensor]-0.001 || v > want[r.Sensor]+0.001 {
			bad = append(bad, fmt.Sprintf("%s read %g V", r.Sensor, v))
		}
		count[r.Sensor]++
		done := true
		for n := range want {
			done = done && count[n] >= 5
		}
		if done {
			cancel()
		}
		return nil
	}
	s, err := sensors.NewScheduler(cfgs, sensors.Deps{Registry: reg, Sink: sink, Clock: kitdclock.New(kitdclock.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for n := range want {
		if count[n] < 5 {
			t.Errorf("%s: %d readings before the test's deadline", n, count[n])
		}
	}
	if len(bad) > 0 {
		t.Errorf("readings of another channel: %v", bad)
	}
	if n := adc.Ignored(); n != 0 {
		t.Errorf("%d conversion starts were written while a conversion ran", n)
	}
}
