package sensors

import (
	"context"
	"errors"
	"testing"
	"time"
)

// ReadNow reads every enabled sensor (or the named ones) at once, on the
// sensors' own loops, without touching the schedule or the sink, and
// never two reads of one device at once.
func TestReadNow(t *testing.T) {
	a, b, off := &probe{}, &probe{readFn: func(int) (Values, error) { return nil, errors.New("nack") }}, &probe{}
	rec := &sinkRec{}
	disabled := false
	s := newTestScheduler(t, map[string]*probe{"a": a, "b": b, "off": off}, []Config{
		{Name: "a", Interval: time.Hour},
		{Name: "b", Interval: time.Hour},
		{Name: "off", Interval: time.Hour, Enabled: &disabled},
	}, rec, nil)
	stop := running(t, s)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	all, err := s.ReadNow(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "a" || all[1].Name != "b" {
		t.Fatalf("all: %+v", all)
	}
	if all[0].Err != nil || all[0].Reading.Sensor != "a" || len(all[0].Reading.Values) == 0 || all[0].Reading.Time.IsZero() {
		t.Errorf("a: %+v", all[0])
	}
	if all[1].Err == nil {
		t.Errorf("b read although its driver fails")
	}
	named, err := s.ReadNow(ctx, []string{"off", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(named[0].Err, ErrDisabled) || named[1].Err != nil {
		t.Errorf("named: %+v", named)
	}
	if _, err := s.ReadNow(ctx, []string{"a", "nope"}); !errors.Is(err, ErrUnknownSensor) {
		t.Errorf("unknown name: %v", err)
	}
	if h := s.Health()[1]; h.OK || h.LastError == "" {
		t.Errorf("b's health does not show the failed read: %+v", h)
	}
	rec.mu.Lock()
	sunk := len(rec.rs)
	rec.mu.Unlock()
	// With hour intervals the loops made their first staggered reads at
	// most; ReadNow's readings never reach the sink.
	if sunk > 2 {
		t.Errorf("%d readings reached the sink", sunk)
	}
	a.mu.Lock()
	misuse := a.misuse
	a.mu.Unlock()
	if len(misuse) > 0 {
		t.Errorf("device misused: %v", misuse)
	}
}

// With the scheduler not running, ReadNow waits only as long as its ctx.
func TestReadNowNotRunning(t *testing.T) {
	s := newTestScheduler(t, map[string]*probe{"a": {}}, []Config{{Name: "a"}}, &sinkRec{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res, err := s.ReadNow(ctx, nil)
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, context.DeadlineExceeded) {
		t.Fatalf("%+v %v", res, err)
	}
}
