package sensors

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

func TestReadOnce(t *testing.T) {
	hung := holdReads(t)
	probes := map[string]*probe{
		"air":     {readFn: func(int) (Values, error) { return Values{"temperature": 20, "humidity": 40.2}, nil }},
		"off":     {},
		"unplug":  {openErr: errors.New("i2c: remote I/O error")},
		"hung":    {readFn: hung.read}, // until the results are checked
		"garbage": {readFn: func(int) (Values, error) { return Values{"pressure": math.NaN()}, nil }},
		"typo":    {},
	}
	reg := probeRegistry(t, probes)
	cfgs := []Config{
		{Name: "air", Driver: "probe", Interval: time.Second,
			Calibrate: map[string]Calibration{"temperature": {Offset: 1.5}}, Deadband: 100},
		{Name: "off", Driver: "probe", Interval: time.Second, Enabled: ptr(false)},
		{Name: "unplug", Driver: "probe", Interval: time.Second},
		{Name: "hung", Driver: "probe", Interval: time.Second, Timeout: 30 * time.Millisecond},
		{Name: "garbage", Driver: "probe", Interval: time.Second},
		{Name: "typo", Driver: "probe", Interval: time.Second, Options: map[string]any{"adress": 1}},
		{Name: "ghost", Driver: "nope", Interval: time.Second},
	}
	rs := ReadOnce(context.Background(), reg, cfgs)
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "air,unplug,hung,garbage,typo,ghost" {
		t.Fatalf("results %s: want config order, enabled only", got)
	}
	air := rs[0]
	if air.Err != nil || air.Driver != "probe" || air.Values["temperature"] != 21.5 || air.Values["humidity"] != 40.2 || air.Took <= 0 {
		t.Fatalf("air: %+v", air)
	}
	checks := []struct {
		r    Result
		want string
	}{
		{rs[1], "open: i2c: remote I/O error"},
		{rs[2], "read: timeout: no answer within 30ms"},
		{rs[3], "read: sensor garbage: [pressure=NaN]"},
		{rs[4], "options: adress: unknown option"},
		{rs[5], `unknown driver "nope"`},
	}
	for _, c := range checks {
		if c.r.Err == nil || !strings.HasPrefix(c.r.Err.Error(), c.want) || c.r.Values != nil {
			t.Errorf("%s: %+v, want error %q", c.r.Name, c.r, c.want)
		}
	}
	if !errors.Is(rs[2].Err, ErrTimeout) || !errors.Is(rs[3].Err, ErrGarbage) {
		t.Fatal("errors do not wrap their sentinels")
	}
	if o, c, _ := probes["off"].counts(); o+c != 0 {
		t.Fatal("a disabled sensor was touched")
	}
	for _, name := range []string{"air", "garbage"} {
		if o, c, _ := probes[name].counts(); o != 1 || c != 1 {
			t.Fatalf("%s: opens=%d closes=%d", name, o, c)
		}
	}
	// The hung read's driver is closed once the read returns.
	if _, c, _ := probes["hung"].counts(); c != 0 {
		t.Fatal("hung sensor closed under its read")
	}
	hung.open()
	testkit.WaitFor(t, 5*time.Second, "hung sensor closed later", func() bool {
		_, c, _ := probes["hung"].counts()
		return c == 1
	})
	for _, p := range probes {
		p.checkMisuse(t)
	}
}

func TestReadOnceRunsConcurrently(t *testing.T) {
	// Every read waits at a gate that opens only once all four have
	// started: reads one after another would never get there.
	probes := map[string]*probe{}
	gate := make(chan struct{})
	started := make(chan int, 4)
	var cfgs []Config
	for _, name := range []string{"a", "b", "c", "d"} {
		probes[name] = &probe{readFn: func(int) (Values, error) {
			started <- 1
			<-gate
			return Values{"v": 1}, nil
		}}
		cfgs = append(cfgs, Config{Name: name, Driver: "probe", Interval: time.Second})
	}
	done := make(chan []Result)
	go func() { done <- ReadOnce(context.Background(), probeRegistry(t, probes), cfgs) }()
	for range 4 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("reads ran one after another")
		}
	}
	close(gate)
	for _, r := range <-done {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	err := WriteTable(&buf, []Result{
		{Name: "air", Driver: "bme280", Values: Values{"temperature": 21.499999999, "pressure": 1013.25, "humidity": 40.2}, Took: 12345678 * time.Nanosecond},
		{Name: "soil-1", Driver: "ads1115", Values: Values{"moisture": 61.5}, Took: 850 * time.Microsecond},
		{Name: "probe", Driver: "ds18b20", Took: 5 * time.Second, Err: errors.Join(errors.New("read: crc mismatch"), errors.New("close: busy"))},
		{Name: "x", Driver: "sim", Err: errors.New("options: bus: required")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `NAME    DRIVER   VALUES                                           TOOK   ERROR
air     bme280   humidity=40.2 pressure=1013.25 temperature=21.5  12ms   -
soil-1  ads1115  moisture=61.5                                    850µs  -
probe   ds18b20  -                                                5s     read: crc mismatch; close: busy
x       sim      -                                                -      options: bus: required
`
	if got := buf.String(); got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatNumber(t *testing.T) {
	for in, want := range map[float64]string{
		21.5: "21.5", 21.499999999: "21.5", 0.0000123: "0.0000123", -3: "-3", 101325: "101325", 1013.25: "1013.25",
	} {
		if got := formatNumber(in); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestReadOnceCancelledStillCloses(t *testing.T) {
	p := &probe{}
	ctx, cancel := context.WithCancel(context.Background())
	// Ctrl-C after the read completed, as the close begins. (Cancelling
	// inside the read made the read race its own cancellation: either
	// outcome is right there, so the test was flaky.)
	p.readFn = func(int) (Values, error) { return Values{"v": 1}, nil }
	p.closeHook = func() {
		cancel()
		// A close that takes a moment: one under the cancelled context
		// would be abandoned right away.
		time.Sleep(50 * time.Millisecond)
	}
	rs := ReadOnce(ctx, probeRegistry(t, map[string]*probe{"a": p}), []Config{{Name: "a", Driver: "probe", Interval: time.Second}})
	if len(rs) != 1 {
		t.Fatal(rs)
	}
	// The read finished; the close must not inherit the cancellation.
	if rs[0].Err != nil || rs[0].Values["v"] != 1 {
		t.Fatalf("result %+v", rs[0])
	}
	testkit.WaitFor(t, 5*time.Second, "driver closed", func() bool {
		_, c, _ := p.counts()
		return c == 1
	})
	p.checkMisuse(t)
}
