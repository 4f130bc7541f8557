package sim

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/telemetry"
)

func prepareSim(t *testing.T, name string, opts map[string]any) (sensors.Opener, error) {
	t.Helper()
	return KindAt(fixedNow).Prepare(name, sensors.NewOptions(opts))
}

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

func TestOptionsRejected(t *testing.T) {
	cases := []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"quantities": []any{"temperature", "radiation"}}, `quantities: unknown quantity "radiation" (known: [temperature humidity pressure moisture co2 illuminance voltage current power])`},
		{map[string]any{"quantities": []any{"co2", "co2"}}, `quantities: "co2" listed twice`},
		{map[string]any{"quantities": []any{}}, "quantities: must list at least one quantity"},
		{map[string]any{"quantities": 7}, "quantities: want a list of strings"},
		{map[string]any{"fail_every": -2}, "fail_every: must not be negative"},
		{map[string]any{"fail_every": "often"}, "fail_every: want an integer"},
		{map[string]any{"hang": "-1s"}, "hang: must not be negative"},
		{map[string]any{"hang": 3}, "hang: want a duration with a unit"},
		{map[string]any{"qantities": []any{"co2"}}, "qantities: unknown option"},
	}
	for _, c := range cases {
		_, err := prepareSim(t, "s", c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("options %v: %v, want %q", c.opts, err, c.want)
		}
	}
}

func TestDefaultQuantities(t *testing.T) {
	open, err := prepareSim(t, "sim", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	v, err := d.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 2 || v["temperature"] != Value("sim", "temperature", t0) || v["humidity"] != Value("sim", "humidity", t0) {
		t.Fatalf("values %v", v)
	}
}

func TestValueDeterministicPlausibleAndDistinct(t *testing.T) {
	ranges := map[string][2]float64{
		"temperature": {-40, 85}, "humidity": {0, 100}, "pressure": {300, 1100}, "moisture": {0, 100},
		"co2": {400, 5000}, "illuminance": {0, 100000}, "voltage": {0, 30}, "current": {0, 10}, "power": {0, 300},
	}
	if len(ranges) != len(Quantities()) {
		t.Fatal("a quantity without a range check")
	}
	n := 2000
	if testing.Short() {
		n = 300
	}
	for _, q := range Quantities() {
		lo, hi := ranges[q][0], ranges[q][1]
		for _, name := range []string{"sim", "air", "soil-1", "a"} {
			distinct := map[float64]bool{}
			for i := range n {
				at := t0.Add(time.Duration(i) * 7 * time.Second) // spans ~4h: several periods
				v := Value(name, q, at)
				if v != Value(name, q, at) {
					t.Fatalf("%s/%s not deterministic", name, q)
				}
				if math.IsNaN(v) || v < lo || v > hi {
					t.Fatalf("%s/%s = %v at %v, outside %v..%v", name, q, v, at, lo, hi)
				}
				if v != math.Round(v*100)/100 {
					t.Fatalf("%s/%s = %v not rounded to 2 decimals", name, q, v)
				}
				distinct[v] = true
			}
			if len(distinct) < 20 {
				t.Fatalf("%s/%s takes only %d values: not a waveform", name, q, len(distinct))
			}
		}
		if Value("air", q, t0) == Value("soil-1", q, t0) && Value("air", q, t0.Add(time.Minute)) == Value("soil-1", q, t0.Add(time.Minute)) {
			t.Errorf("%s: two sensors give the same curve", q)
		}
	}
	// Before 1970 (an unsynced clock gone wrong) stays in range too.
	if v := Value("x", "humidity", time.Unix(-12345, 0)); v < 0 || v > 100 {
		t.Fatalf("humidity %v before 1970", v)
	}
	if !math.IsNaN(Value("x", "radiation", t0)) {
		t.Fatal("unknown quantity has a value")
	}
}

func TestFailEveryCountsAcrossReopen(t *testing.T) {
	open, err := prepareSim(t, "s", map[string]any{"fail_every": 3})
	if err != nil {
		t.Fatal(err)
	}
	var failed []int
	n := 0
	for range 3 { // three opens, three reads each
		d, err := open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			n++
			if _, err := d.Read(context.Background()); err != nil {
				if !strings.Contains(err.Error(), fmt.Sprintf("read %d", n)) {
					t.Fatalf("error %q", err)
				}
				failed = append(failed, n)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(failed) != "[3 6 9]" {
		t.Fatalf("failed reads %v, want [3 6 9]", failed)
	}
}

func TestHangIgnoresContext(t *testing.T) {
	open, err := prepareSim(t, "s", map[string]any{"hang": "150ms"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := d.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Fatalf("hung read returned after %v, before its hang", took)
	}
}

func TestOpenErrorAndOneUser(t *testing.T) {
	open, err := prepareSim(t, "s", map[string]any{"open_error": "no device at 0x76"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(context.Background()); err == nil || err.Error() != "sim: no device at 0x76" {
		t.Fatalf("open: %v", err)
	}

	open, _ = prepareSim(t, "s", map[string]any{"hang": "100ms"})
	d, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(context.Background()); err == nil || !strings.Contains(err.Error(), "two users") {
		t.Fatalf("second open: %v", err)
	}
	// A read while another is in progress: start the second once the
	// first has taken the device. A loaded machine may still let the
	// first end before the second gets there (then the second simply
	// reads), so that case is tried again rather than timed.
	for try := 1; ; try++ {
		first := make(chan struct{})
		go func() { defer close(first); d.Read(context.Background()) }()
		for !d.(*driver).dev.reading.Load() {
			select {
			case <-first:
			default:
				time.Sleep(time.Millisecond)
				continue
			}
			break
		}
		_, err := d.Read(context.Background())
		<-first
		if err != nil && strings.Contains(err.Error(), "two users") {
			break
		}
		if try == 20 {
			t.Fatalf("concurrent read: %v", err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(context.Background()); err == nil {
		t.Fatal("read after close")
	}
	if err := d.Close(); err == nil {
		t.Fatal("second close")
	}
	if d2, err := open(context.Background()); err != nil {
		t.Fatalf("re-open after close: %v", err)
	} else {
		d2.Close()
	}
}

// stepClock is a telemetry.Clock whose time moves only when the sink moves
// it, so the sim and the scheduler see the same instant for a reading.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	synced bool
}

func (c *stepClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *stepClock) Mono() time.Duration { c.mu.Lock(); defer c.mu.Unlock(); return c.now.Sub(t0) }
func (c *stepClock) Boot() uint64        { return 1 }
func (c *stepClock) Synced() bool        { return c.synced }
func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestSchedulerReadingsMatchValue(t *testing.T) {
	for _, synced := range []bool{true, false} {
		clk := &stepClock{now: t0, synced: synced}
		reg, err := sensors.NewRegistry(KindAt(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var rs []telemetry.Reading
		sink := func(r telemetry.Reading) error {
			mu.Lock()
			rs = append(rs, r)
			mu.Unlock()
			clk.advance(37 * time.Second)
			return nil
		}
		cfgs := []sensors.Config{{Name: "greenhouse", Driver: "sim", Interval: 100 * time.Millisecond,
			Options: map[string]any{"quantities": []any{"temperature", "co2", "illuminance"}, "fail_every": 4}}}
		s, err := sensors.NewScheduler(cfgs, sensors.Deps{Registry: reg, Sink: sink, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := len(rs)
			mu.Unlock()
			if n >= 5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d readings in 10s", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		wantClock := telemetry.ClockSynced
		if !synced {
			wantClock = telemetry.ClockUnsynced
		}
		for _, r := range rs {
			if r.Clock != wantClock || len(r.Values) != 3 {
				t.Fatalf("reading %+v", r)
			}
			for q, v := range r.Values {
				if want := Value("greenhouse", q, r.Time); v != want {
					t.Fatalf("%s at %v = %v, Value says %v", q, r.Time, v, want)
				}
			}
		}
		h := s.Health()[0]
		if h.Failures < 1 || h.Readings < 5 {
			t.Fatalf("fail_every 4 under the scheduler: %+v", h)
		}
	}
}

func TestReadOnceWithSim(t *testing.T) {
	reg, err := sensors.NewRegistry(Kind())
	if err != nil {
		t.Fatal(err)
	}
	rs := sensors.ReadOnce(context.Background(), reg, []sensors.Config{
		{Name: "a", Driver: "sim", Interval: time.Second, Options: map[string]any{"quantities": "pressure, voltage"}},
		{Name: "b", Driver: "sim", Interval: time.Second, Options: map[string]any{"open_error": "bus gone"}},
		{Name: "c", Driver: "sim", Interval: time.Second, Timeout: 20 * time.Millisecond, Options: map[string]any{"hang": "200ms"}},
	})
	if rs[0].Err != nil || len(rs[0].Values) != 2 || rs[0].Values["pressure"] < 300 {
		t.Fatalf("a: %+v", rs[0])
	}
	if rs[1].Err == nil || rs[1].Err.Error() != "open: sim: bus gone" {
		t.Fatalf("b: %+v", rs[1])
	}
	if rs[2].Err == nil || !strings.Contains(rs[2].Err.Error(), "timeout") {
		t.Fatalf("c: %+v", rs[2])
	}
	if Kind().Name != "sim" || Kind().Timeout != DefaultTimeout {
		t.Fatal("kind")
	}
}
