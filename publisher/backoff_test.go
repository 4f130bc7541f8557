package publisher

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBackoffScheduleCeilings(t *testing.T) {
	s := defaultOptions().schedule()
	for _, c := range []struct {
		attempt int
		down    time.Duration
		want    time.Duration
	}{
		{0, 0, 4 * time.Second},
		{1, 5 * time.Second, 8 * time.Second},
		{2, 20 * time.Second, 10 * time.Second},
		{50, 9*time.Minute + 59*time.Second, 10 * time.Second},
		// Patience over without a connection: the ceiling goes on doubling.
		{2, 10 * time.Minute, 16 * time.Second},
		{3, time.Hour, 32 * time.Second},
		{5, time.Hour, 2 * time.Minute},
		{64, 24 * time.Hour, 2 * time.Minute},
	} {
		if got := s.ceiling(c.attempt, c.down); got != c.want {
			t.Errorf("ceiling(attempt %d, down %v) = %v, want %v", c.attempt, c.down, got, c.want)
		}
	}
}

func TestBackoffWaitsWithinFloorAndCeiling(t *testing.T) {
	s := defaultOptions().schedule()
	for _, f := range []func(int64) int64{
		func(int64) int64 { return 0 },
		func(n int64) int64 { return n - 1 },
		rand.New(rand.NewPCG(1, 2)).Int64N,
	} {
		for attempt := range 12 {
			for _, down := range []time.Duration{0, time.Minute, time.Hour} {
				c := s.ceiling(attempt, down)
				if d := s.wait(attempt, down, f); d < time.Second || d > c {
					t.Fatalf("attempt %d, down %v: wait %v outside [1s, %v]", attempt, down, d, c)
				}
			}
		}
	}
	if d := s.wait(3, 0, func(n int64) int64 { return n - 1 }); d != 10*time.Second {
		t.Errorf("largest draw at the fast cap: %v, want exactly 10s", d)
	}
}

func TestBackoffResetStartsOver(t *testing.T) {
	top := func(n int64) int64 { return n - 1 }
	b := backoff{s: defaultOptions().schedule(), rand: top}
	for range 10 {
		b.next(time.Hour)
	}
	if d := b.next(time.Hour); d != 2*time.Minute {
		t.Fatalf("after 10 failures an hour down: %v, want the 2 min cap", d)
	}
	b.reset()
	if d := b.next(0); d != 4*time.Second {
		t.Fatalf("after reset: ceiling %v, want 4s", d)
	}
}

// Fast flaps (the soak's connection cut 2 s in every 5): connections never
// live long enough to reset the attempt count, but each one restarts the
// down clock, so no pause ever exceeds the fast cap. Before, the ceiling
// doubled to 2 min and stayed there.
func TestBackoffFastFlapsStayShort(t *testing.T) {
	b := backoff{s: defaultOptions().schedule(), rand: func(n int64) int64 { return n - 1 }}
	var longest time.Duration
	for range 1000 { // over an hour of flapping
		longest = max(longest, b.next(0))             // the connection just dropped
		longest = max(longest, b.next(2*time.Second)) // a failed attempt while cut
	}
	if longest != 10*time.Second {
		t.Fatalf("longest pause under fast flaps %v, want the 10 s fast cap", longest)
	}
}

// fleetReconnects simulates n kits that lose the broker at t=0 (a broker
// restart drops every connection at once) and retry on the schedule; each
// attempt before the broker is back at outage fails at once (connection
// refused, the quickest failure and so the most attempts). It returns each
// kit's delay between the broker's return and its reconnect.
func fleetReconnects(s schedule, n int, outage time.Duration, seed uint64) []time.Duration {
	r := rand.New(rand.NewPCG(seed, 7))
	delays := make([]time.Duration, n)
	for i := range delays {
		b := backoff{s: s, rand: r.Int64N}
		var t time.Duration
		for {
			t += b.next(t) // down since 0
			if t >= outage {
				break
			}
		}
		delays[i] = t - outage
	}
	return delays
}

// percentile of sorted ds, nearest rank.
func percentile(ds []time.Duration, p int) time.Duration {
	return ds[(len(ds)*p+99)/100-1]
}

// busiestSecond is the largest number of reconnects any one-second window
// (sliding) of the broker's clock sees.
func busiestSecond(delays []time.Duration) int {
	ds := slices.Sorted(slices.Values(delays))
	most, lo := 0, 0
	for hi := range ds {
		for ds[hi]-ds[lo] >= time.Second {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

// The bound: reconnect within 15 s of the broker's return (p95) for
// outages up to 10 minutes, and a fleet of 200 never reaching the broker in
// the same second. The model is the schedule itself with a seeded
// generator, so the figures are exact, not timing.
func TestFleetReconnectSpread(t *testing.T) {
	s := defaultOptions().schedule()
	const fleet = 200
	for _, outage := range []time.Duration{
		500 * time.Millisecond, 2 * time.Second, 5 * time.Second, 24 * time.Second,
		time.Minute, 3 * time.Minute, 9*time.Minute + 59*time.Second,
	} {
		ds := fleetReconnects(s, fleet, outage, uint64(outage))
		peak := busiestSecond(ds)
		slices.Sort(ds)
		p50, p95, worst := percentile(ds, 50), percentile(ds, 95), ds[len(ds)-1]
		t.Logf("outage %v: reconnect after return p50 %v p95 %v max %v; busiest second %d of %d kits",
			outage, p50.Round(10*time.Millisecond), p95.Round(10*time.Millisecond), worst.Round(10*time.Millisecond), peak, fleet)
		if p95 > 15*time.Second || worst > s.fast {
			t.Errorf("outage %v: p95 %v, max %v: want p95 within 15 s and none over the %v fast cap", outage, p95, worst, s.fast)
		}
		if peak > fleet/2 {
			t.Errorf("outage %v: %d of %d kits reconnected within one second", outage, peak, fleet)
		}
	}
	// Past patience the waits grow again, to 2 min: the documented price of
	// not keeping a cellular link busy with handshakes all day.
	ds := fleetReconnects(s, fleet, time.Hour, 99)
	slices.Sort(ds)
	t.Logf("outage 1h: p50 %v p95 %v max %v", percentile(ds, 50).Round(time.Second), percentile(ds, 95).Round(time.Second), ds[len(ds)-1].Round(time.Second))
	if worst := ds[len(ds)-1]; worst > s.max {
		t.Errorf("outage 1h: a kit waited %v after the return, over the %v cap", worst, s.max)
	}
}
