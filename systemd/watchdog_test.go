package systemd

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"30000000", me, 30 * time.Second},
		{"500000", "", 500 * time.Millisecond}, // no pid: ours, as sd_watchdog_enabled says
		{"", me, 0},
		{"0", me, 0},
		{"-5", me, 0},
		{"30s", me, 0},
		{"18446744073709551615", me, 0}, // USEC_INFINITY
		{"30000000", "1", 0},            // another process's watchdog
		{"30000000", "x", 0},
	} {
		if got := WatchdogInterval(c.usec, c.pid); got != c.want {
			t.Errorf("WatchdogInterval(%q, %q) = %s, want %s", c.usec, c.pid, got, c.want)
		}
	}
}

// loop stands for one of the agent's loops. Until the test wedges it, its
// progress is always fresh, so no scheduling delay (qemu, -race, a busy
// CI machine) can fail its check; once wedged, its progress stops, stored
// as the agent stores it on 32-bit ARM (unix nanos in an atomic.Int64).
type loop struct {
	wedged atomic.Bool
	frozen atomic.Int64
}

func (l *loop) wedge(on bool) {
	l.frozen.Store(time.Now().UnixNano())
	l.wedged.Store(on)
}

func (l *loop) progress() time.Time {
	if l.wedged.Load() {
		return time.Unix(0, l.frozen.Load())
	}
	return time.Now()
}

// logRecorder is an slog.Handler that keeps messages for assertions.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
	seen chan string
}

func newLogRecorder() *logRecorder { return &logRecorder{seen: make(chan string, 100)} }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool { line += " " + a.Key + "=" + a.Value.String(); return true })
	r.mu.Lock()
	r.msgs = append(r.msgs, line)
	r.mu.Unlock()
	r.seen <- line
	return nil
}

func (r *logRecorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// waitLog waits for a log line containing substr.
func (r *logRecorder) waitLog(t *testing.T, substr string) string {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case l := <-r.seen:
			if strings.Contains(l, substr) {
				return l
			}
		case <-timeout:
			t.Fatalf("no log line with %q within %s; log: %q", substr, wait, r.lines())
		}
	}
}

// The watchdog pings while the loops go round, stops when one wedges, says
// which one once, and resumes when it recovers.
func TestRunWatchdogStopsPingsWhileALoopIsWedged(t *testing.T) {
	const interval = 100 * time.Millisecond // pings every 50ms
	s := listenNotify(t)
	var scheduler, publisher loop
	rec := newLogRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunWatchdog(ctx, NewNotifier(s.path), interval, []Check{
			ProgressCheck("scheduler", scheduler.progress, 150*time.Millisecond),
			ProgressCheck("publisher", publisher.progress, 150*time.Millisecond),
		}, slog.New(rec))
	}()
	defer func() { cancel(); <-done }()

	for range 3 {
		if got := s.next(wait); got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}

	publisher.wedge(true)
	failed := rec.waitLog(t, "check failed")
	if !strings.Contains(failed, "publisher: no progress") {
		t.Fatalf("failure log %q does not name the publisher", failed)
	}
	// Pings sent before the failure are already queued; none may follow.
	s.drain()
	s.quiet("WATCHDOG=1", 5*interval)

	publisher.wedge(false)
	rec.waitLog(t, "pings resume")
	if got := s.next(wait); got != "WATCHDOG=1" {
		t.Fatalf("after recovery got %q, want WATCHDOG=1", got)
	}

	var failures, recoveries int
	for _, l := range rec.lines() {
		if strings.Contains(l, "check failed") {
			failures++
		}
		if strings.Contains(l, "healthy again") {
			recoveries++
		}
	}
	if failures != 1 || recoveries != 1 {
		t.Fatalf("logged %d failures and %d recoveries, want one each (once per change): %q", failures, recoveries, rec.lines())
	}
}

func TestRunWatchdogReturnsWhenContextEnds(t *testing.T) {
	s := listenNotify(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); RunWatchdog(ctx, NewNotifier(s.path), time.Hour, nil, nil) }()
	if got := s.next(wait); got != "WATCHDOG=1" {
		t.Fatalf("got %q, want a first ping at once", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("RunWatchdog did not return after cancel")
	}
}

func TestRunWatchdogOffReturnsAtOnce(t *testing.T) {
	s := listenNotify(t)
	RunWatchdog(context.Background(), NewNotifier(s.path), 0, nil, nil)
	s.quiet("", 50*time.Millisecond)
}

// A lost ping is logged once, not every round.
func TestRunWatchdogLogsPingFailureOnce(t *testing.T) {
	rec := newLogRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunWatchdog(ctx, NewNotifier(t.TempDir()+"/gone"), 20*time.Millisecond, nil, slog.New(rec))
	}()
	rec.waitLog(t, "ping failed")
	time.Sleep(100 * time.Millisecond) // several more rounds
	cancel()
	<-done
	if n := len(rec.lines()); n != 1 {
		t.Fatalf("logged %d lines, want 1: %q", n, rec.lines())
	}
}

func TestProgressCheck(t *testing.T) {
	t0 := time.Now()
	p := t0
	check := ProgressCheck("scheduler", func() time.Time { return p }, 10*time.Second)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	if err := check(at(0)); err != nil {
		t.Fatalf("first round: %v", err)
	}
	if err := check(at(10 * time.Second)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	err := check(at(11 * time.Second))
	if err == nil || !strings.HasPrefix(err.Error(), "scheduler: no progress for 11s") {
		t.Fatalf("stalled 11s: got %v, want scheduler: no progress for 11s", err)
	}
	p = t0.Add(12 * time.Second)
	if err := check(at(12 * time.Second)); err != nil {
		t.Fatalf("after progress: %v", err)
	}
}

// NTP's first sync on a Pi steps the wall clock by months; a loop that
// keeps going round must stay healthy across it, in either direction.
func TestProgressCheckIgnoresClockSteps(t *testing.T) {
	t0 := time.Now()
	p := t0
	check := ProgressCheck("publisher", func() time.Time { return p }, 10*time.Second)
	for i, step := range []time.Duration{0, 200 * 24 * time.Hour, -400 * 24 * time.Hour} {
		p = p.Add(step + time.Second)
		if err := check(t0.Add(time.Duration(i) * 5 * time.Second)); err != nil {
			t.Fatalf("after a clock step of %s: %v", step, err)
		}
	}
	// And a wedge after the step is still caught.
	if err := check(t0.Add(30 * time.Second)); err == nil {
		t.Fatal("a loop stalled for 20s after a clock step passed the check")
	}
}

// A loop that never goes round fails once maxAge has passed since the
// watchdog's first round.
func TestProgressCheckNeverStarted(t *testing.T) {
	t0 := time.Now()
	check := ProgressCheck("scheduler", func() time.Time { return time.Time{} }, time.Second)
	if err := check(t0); err != nil {
		t.Fatal(err)
	}
	if err := check(t0.Add(2 * time.Second)); err == nil {
		t.Fatal("a loop that never started passed after maxAge")
	}
}
