package sensors

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/telemetry"
)

// These tests call one sensor's attempt directly, without the loop's
// timers, so they can count exactly.

func attemptScheduler(t *testing.T, p *probe, c Config, clk telemetry.Clock, sink Sink, log *logBuf) *Scheduler {
	t.Helper()
	if c.Name == "" {
		c.Name = "s1"
	}
	c.Driver = "probe"
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	lg := (&logBuf{}).logger()
	if log != nil {
		lg = log.logger()
	}
	s, err := NewScheduler([]Config{c}, Deps{Registry: probeRegistry(t, map[string]*probe{c.Name: p}), Sink: sink, Clock: clk, Log: lg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAttemptReopensAfterThreeReadFailures(t *testing.T) {
	p := &probe{readFn: func(int) (Values, error) { return nil, errors.New("i2c: remote I/O error") }}
	rec := &sinkRec{}
	s := attemptScheduler(t, p, Config{}, newFakeClock(), rec.sink, nil)
	sn := s.sensors[0]
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		s.attempt(ctx, sn)
	}
	if o, c, r := p.counts(); o != 1 || c != 1 || r != 3 {
		t.Fatalf("after 3 failed reads: opens=%d closes=%d reads=%d, want 1 1 3", o, c, r)
	}
	s.attempt(ctx, sn)
	if o, c, r := p.counts(); o != 2 || c != 1 || r != 4 {
		t.Fatalf("4th attempt: opens=%d closes=%d reads=%d, want a re-open: 2 1 4", o, c, r)
	}
	h := s.Health()[0]
	if h.ConsecutiveFailures != 4 || h.Failures != 4 || h.OK || h.Readings != 0 {
		t.Fatalf("health %+v", h)
	}
	if h.LastError != "read: i2c: remote I/O error" {
		t.Fatalf("last error %q", h.LastError)
	}
	if len(rec.readings()) != 0 {
		t.Fatal("a failed read reached the sink")
	}
	// A success in between resets the count: two more failures do not
	// close the freshly opened driver.
	p.mu.Lock()
	p.readFn = nil
	p.mu.Unlock()
	s.attempt(ctx, sn)
	p.mu.Lock()
	p.readFn = func(int) (Values, error) { return nil, errors.New("nack") }
	p.mu.Unlock()
	s.attempt(ctx, sn)
	s.attempt(ctx, sn)
	if o, c, _ := p.counts(); o != 2 || c != 1 {
		t.Fatalf("after success + 2 failures: opens=%d closes=%d, want 2 1", o, c)
	}
	p.checkMisuse(t)
}

func TestAttemptOpenFailureIsAFailure(t *testing.T) {
	p := &probe{openErr: errors.New("open /dev/i2c-1: no such file or directory")}
	rec := &sinkRec{}
	s := attemptScheduler(t, p, Config{}, newFakeClock(), rec.sink, nil)
	for range 2 {
		s.attempt(context.Background(), s.sensors[0])
	}
	h := s.Health()[0]
	if h.ConsecutiveFailures != 2 || h.Failures != 2 || h.OK {
		t.Fatalf("health %+v", h)
	}
	if !strings.HasPrefix(h.LastError, "open: ") || !strings.Contains(h.LastError, "no such file") {
		t.Fatalf("last error %q", h.LastError)
	}
	if _, _, r := p.counts(); r != 0 {
		t.Fatal("read without an open driver")
	}
}

func TestAttemptGarbageIsAFailure(t *testing.T) {
	cases := map[string]Values{
		"empty":    {},
		"nil":      nil,
		"NaN":      {"temperature": math.NaN(), "humidity": 40},
		"+Inf":     {"pressure": math.Inf(1)},
		"-Inf":     {"pressure": math.Inf(-1)},
		"overflow": {"temperature": math.MaxFloat64}, // calibrated below to +Inf
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			p := &probe{readFn: func(int) (Values, error) { return v, nil }}
			rec := &sinkRec{}
			c := Config{Calibrate: map[string]Calibration{"temperature": {Scale: ptr(10.0)}}}
			s := attemptScheduler(t, p, c, newFakeClock(), rec.sink, nil)
			s.attempt(context.Background(), s.sensors[0])
			h := s.Health()[0]
			if h.Failures != 1 || h.OK || h.Readings != 0 || len(rec.readings()) != 0 {
				t.Fatalf("garbage %v accepted: %+v", v, h)
			}
			if !strings.Contains(h.LastError, ErrGarbage.Error()) {
				t.Fatalf("last error %q", h.LastError)
			}
		})
	}
}

func TestAttemptStampsReading(t *testing.T) {
	for _, synced := range []bool{true, false} {
		clk := newFakeClock()
		clk.SetSynced(synced)
		rec := &sinkRec{}
		s := attemptScheduler(t, &probe{}, Config{Name: "air"}, clk, rec.sink, nil)
		s.attempt(context.Background(), s.sensors[0])
		rs := rec.readings()
		if len(rs) != 1 {
			t.Fatalf("synced=%v: %d readings", synced, len(rs))
		}
		r := rs[0]
		want := telemetry.ClockSynced
		if !synced {
			want = telemetry.ClockUnsynced
		}
		if r.Sensor != "air" || !r.Time.Equal(clk.Now()) || r.Mono != clk.Mono() || r.Boot != clk.Boot() || r.Clock != want {
			t.Fatalf("synced=%v: reading %+v", synced, r)
		}
		if r.Values["temperature"] != 21.5 {
			t.Fatalf("values %v", r.Values)
		}
		h := s.Health()[0]
		if !h.OK || h.Readings != 1 || !h.LastReading.Equal(clk.Now()) {
			t.Fatalf("health %+v", h)
		}
	}
}

func TestAttemptCalibratesThenDeadband(t *testing.T) {
	raw := []float64{20, 20.2, 20.4, 20.4, 19.9}
	p := &probe{readFn: func(n int) (Values, error) {
		return Values{"temperature": raw[n-1], "humidity": 50}, nil
	}}
	rec := &sinkRec{}
	c := Config{
		Calibrate: map[string]Calibration{
			"temperature": {Scale: ptr(1.5), Offset: -2}, // 20 → 28
			"moisture":    {Offset: 5},                   // not reported: ignored
		},
		Deadband: 0.5,
	}
	clk := newFakeClock()
	s := attemptScheduler(t, p, c, clk, rec.sink, nil)
	for range raw {
		s.attempt(context.Background(), s.sensors[0])
		clk.Advance(time.Second)
	}
	// Calibrated: 28, 28.3 (moved 0.3: dropped), 28.6 (0.6 from 28: kept),
	// 28.6 (dropped), 27.85 (0.75: kept). Raw, 20.2 and 20.4 differ by less
	// than the deadband: calibrating after would keep the wrong ones.
	var got []float64
	for _, r := range rec.readings() {
		got = append(got, r.Values["temperature"])
		if _, ok := r.Values["moisture"]; ok {
			t.Fatal("calibration invented a quantity")
		}
	}
	want := []float64{28, 28.6, 27.85}
	if len(got) != len(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("kept %v, want %v", got, want)
		}
	}
	h := s.Health()[0]
	if h.Readings != 3 || h.Suppressed != 2 || !h.OK {
		t.Fatalf("health %+v", h)
	}
}

func TestAttemptDeadbandMaxSilence(t *testing.T) {
	rec := &sinkRec{}
	clk := newFakeClock()
	c := Config{Deadband: 1, MaxSilence: 10 * time.Minute}
	s := attemptScheduler(t, &probe{}, c, clk, rec.sink, nil)
	var keptAt []int
	for i := 0; i < 8; i++ {
		before := len(rec.readings())
		s.attempt(context.Background(), s.sensors[0])
		if len(rec.readings()) > before {
			keptAt = append(keptAt, i*4)
		}
		clk.Advance(4 * time.Minute)
	}
	// A flat signal sampled every 4 minutes: kept at 0, then at the first
	// sample 10 minutes or more after the last kept one.
	want := []int{0, 12, 24}
	if len(keptAt) != len(want) || keptAt[0] != 0 || keptAt[1] != 12 || keptAt[2] != 24 {
		t.Fatalf("kept at minutes %v, want %v", keptAt, want)
	}
}

func TestDeadbandDefaultsAndQuantitySetChange(t *testing.T) {
	if d := newDeadband(Config{Deadband: 0.1}); d.maxSilence != DefaultMaxSilence {
		t.Fatalf("max silence %v, want the default", d.maxSilence)
	}
	d0 := newDeadband(Config{})
	first := d0.keep(Values{"a": 1}, 0)
	second := d0.keep(Values{"a": 1}, 0) // same value again
	if !first || !second {
		t.Fatal("no deadband must keep every reading")
	}
	d := newDeadband(Config{Deadband: 5})
	if !d.keep(Values{"a": 1}, 0) {
		t.Fatal("first reading dropped")
	}
	if !d.keep(Values{"a": 1, "b": 2}, 1) {
		t.Fatal("a new quantity must be kept")
	}
	if !d.keep(Values{"a": 1, "c": 2}, 2) {
		t.Fatal("a renamed quantity must be kept")
	}
	if d.keep(Values{"a": 4.9, "c": -2.9}, 3) {
		t.Fatal("moves under the band kept")
	}
	if !d.keep(Values{"a": 1, "c": -3}, 4) {
		t.Fatal("a move of exactly the band dropped")
	}
	d.reset()
	if !d.keep(Values{"a": 1, "c": -3}, 5) {
		t.Fatal("first reading after reset dropped")
	}
}

func TestLogsOneLinePerFailureRun(t *testing.T) {
	fail := true
	p := &probe{readFn: func(int) (Values, error) {
		if fail {
			return nil, errors.New("crc mismatch")
		}
		return Values{"temperature": 20}, nil
	}}
	sinkFail := false
	rec := &sinkRec{err: func(int) error {
		if sinkFail {
			return errors.New("buffer: disk full")
		}
		return nil
	}}
	log := &logBuf{}
	s := attemptScheduler(t, p, Config{Name: "probe-7"}, newFakeClock(), rec.sink, log)
	sn := s.sensors[0]
	run := func(n int) {
		for range n {
			s.attempt(context.Background(), sn)
		}
	}
	setFail := func(b bool) {
		p.mu.Lock()
		fail = b
		p.mu.Unlock()
	}
	run(10)
	failing := log.lines("sensor failing")
	if len(failing) != 1 || !strings.Contains(failing[0], "sensor=probe-7") || !strings.Contains(failing[0], "crc mismatch") {
		t.Fatalf("10 failures logged as %q", failing)
	}
	setFail(false)
	run(3)
	recovered := log.lines("sensor recovered")
	if len(recovered) != 1 || !strings.Contains(recovered[0], "failures=10") {
		t.Fatalf("recovery logged as %q", recovered)
	}
	setFail(true)
	run(2)
	if n := len(log.lines("sensor failing")); n != 2 {
		t.Fatalf("a second run of failures logged %d lines in all, want 2", n)
	}
	setFail(false)

	rec.mu.Lock()
	sinkFail = true
	rec.mu.Unlock()
	run(5)
	refused := log.lines("buffer refused")
	if len(refused) != 1 || !strings.Contains(refused[0], "disk full") {
		t.Fatalf("5 sink errors logged as %q", refused)
	}
	rec.mu.Lock()
	sinkFail = false
	rec.mu.Unlock()
	run(1)
	again := log.lines("buffer accepts readings again")
	if len(again) != 1 || !strings.Contains(again[0], "lost=5") {
		t.Fatalf("sink recovery logged as %q", again)
	}
	h := s.Health()[0]
	if h.SinkErrors != 5 || h.Readings != 4 || h.Failures != 12 || !h.OK {
		t.Fatalf("health %+v", h)
	}
}
