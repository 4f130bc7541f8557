package sensors

import (
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	cases := []struct {
		interval time.Duration
		n        int
		want     time.Duration
	}{
		{time.Second, 0, time.Second},
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 3, 4 * time.Second},
		{time.Second, 9, 256 * time.Second},
		{time.Second, 10, MaxBackoff},
		{time.Second, 1 << 20, MaxBackoff},
		{4 * time.Minute, 2, MaxBackoff},
		{10 * time.Minute, 1, 10 * time.Minute},
		{10 * time.Minute, 50, 10 * time.Minute}, // never below the interval
		{24 * time.Hour, 1000, 24 * time.Hour},
	}
	for _, c := range cases {
		if got := retryDelay(c.interval, c.n); got != c.want {
			t.Errorf("retryDelay(%v, %d) = %v, want %v", c.interval, c.n, got, c.want)
		}
	}
}

func TestNextAfterKeepsGridAndSkipsMissedTicks(t *testing.T) {
	base := time.Now()
	iv := 10 * time.Second
	// On time: one wait after the planned time, however late the wake-up
	// within the interval (no drift).
	if got := nextAfter(base, base, iv, iv, base.Add(3*time.Second)); !got.Equal(base.Add(iv)) {
		t.Fatalf("on time: %v after base", got.Sub(base))
	}
	// A read that overran 2.5 intervals: the missed ticks are skipped, the
	// next one stays on the grid.
	if got := nextAfter(base, base, iv, iv, base.Add(25*time.Second)); !got.Equal(base.Add(30 * time.Second)) {
		t.Fatalf("late: %v after base, want 30s", got.Sub(base))
	}
	// Exactly at the planned time counts as missed: run next tick, not now
	// and then again at once.
	if got := nextAfter(base, base, iv, iv, base.Add(iv)); !got.Equal(base.Add(2 * iv)) {
		t.Fatalf("at the tick: %v after base", got.Sub(base))
	}
	// Backoff waits longer than the interval, on the same grid.
	if got := nextAfter(base, base, 4*iv, iv, base.Add(time.Second)); !got.Equal(base.Add(4 * iv)) {
		t.Fatalf("backoff: %v after base", got.Sub(base))
	}
}

// A read planned off the grid (a staggered first read, an enable, an
// interval change) is followed by the first grid point at least a whole
// wait later: the sensor joins the others, never reading twice within an
// interval.
func TestNextAfterJoinsTheGrid(t *testing.T) {
	start := time.Now()
	iv := 10 * time.Second
	for _, c := range []struct {
		last, wait, want time.Duration // after start
	}{
		{last: 3 * time.Second, wait: iv, want: 20 * time.Second},              // staggered first read
		{last: 47 * time.Second, wait: iv, want: 60 * time.Second},             // enabled mid-interval
		{last: 47 * time.Second, wait: 4 * iv, want: 90 * time.Second},         // backing off
		{last: 40 * time.Second, wait: iv, want: 50 * time.Second},             // on the grid already
		{last: 40*time.Second + 1, wait: iv, want: 60 * time.Second},           // a nanosecond off
		{last: 5 * time.Second, wait: 3 * time.Second, want: 10 * time.Second}, // a wait shorter than the grid
	} {
		last := start.Add(c.last)
		got := nextAfter(start, last, c.wait, iv, last)
		if !got.Equal(start.Add(c.want)) {
			t.Errorf("last %v, wait %v: next at %v, want %v", c.last, c.wait, got.Sub(start), c.want)
		}
	}
}

func TestStaggerSpreadsFirstReads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := range 10 {
		d := stagger(i, 10, time.Minute)
		if d < 0 || d >= time.Second {
			t.Fatalf("sensor %d starts after %v, want within 1s", i, d)
		}
		if seen[d] {
			t.Fatalf("two sensors start at %v", d)
		}
		seen[d] = true
	}
	if d := stagger(9, 10, 200*time.Millisecond); d >= 200*time.Millisecond {
		t.Fatalf("stagger %v not within a 200ms interval", d)
	}
	if d := stagger(0, 1, time.Minute); d != 0 {
		t.Fatalf("a lone sensor waits %v", d)
	}
}
