package publisher

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffGrowsWithinFloorAndCap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := backoff{min: time.Second, max: 2 * time.Minute, rand: r.Int64N}
	ceilings := []time.Duration{1, 2, 4, 8, 16, 32, 64, 120, 120, 120}
	for i, c := range ceilings {
		ceiling := c * time.Second
		d := b.next()
		if d < time.Second || d > ceiling {
			t.Fatalf("attempt %d: wait %v outside [1s, %v]", i, d, ceiling)
		}
	}
	b.reset()
	if d := b.next(); d != time.Second {
		t.Fatalf("after reset: %v, want the floor", d)
	}
}

// Jitter must spread: a fleet that lost the broker together must not come
// back together.
func TestBackoffJitterSpreads(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var lo, hi time.Duration = time.Hour, 0
	for i := 0; i < 200; i++ {
		b := backoff{min: time.Second, max: 2 * time.Minute, rand: r.Int64N}
		for j := 0; j < 8; j++ {
			b.next()
		}
		d := b.next() // ceiling 2 min
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < time.Minute {
		t.Fatalf("200 kits at the cap waited between %v and %v: not spread", lo, hi)
	}
}

func TestBackoffExtremeRandomness(t *testing.T) {
	for _, f := range []func(int64) int64{
		func(int64) int64 { return 0 },
		func(n int64) int64 { return n - 1 },
	} {
		b := backoff{min: time.Second, max: 4 * time.Second, rand: f}
		for i := 0; i < 5; i++ {
			if d := b.next(); d < time.Second || d > 4*time.Second {
				t.Fatalf("wait %v outside [1s, 4s]", d)
			}
		}
	}
}
