package telemetry

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func checkTime(t *testing.T, tm time.Time) {
	t.Helper()
	want := tm.UTC().AppendFormat(nil, TimeLayout)
	if got := appendTime(nil, tm); string(got) != string(want) {
		t.Fatalf("appendTime(%d s %d ns) = %s, AppendFormat %s", tm.Unix(), tm.Nanosecond(), got, want)
	}
}

// Every day boundary, and a second either side of it, from 1900 to 2500:
// leap years (2000, 2024), non-leap centuries (1900, 2100, 2200, 2300),
// month and year ends.
func TestAppendTimeDayBoundaries(t *testing.T) {
	start := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		checkTime(t, d)
		checkTime(t, d.Add(-time.Nanosecond))
		checkTime(t, d.Add(time.Second+999_999_999))
	}
}

func TestAppendTimeEdges(t *testing.T) {
	for _, tm := range []time.Time{
		time.Unix(0, 0),
		time.Unix(0, -1),            // 1969-12-31T23:59:59.999Z: milliseconds floor, not toward zero
		time.Unix(-1, 500_000_000),  // 1969-12-31T23:59:59.500Z
		time.Unix(0, math.MinInt64), // the oldest a record can hold (1677)
		time.Unix(0, math.MaxInt64), // the newest (2262)
		time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2100, 2, 28, 12, 0, 0, 1_000_000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),                                    // first second of the fast path
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),                  // last
		time.Date(0, 12, 31, 23, 59, 59, 0, time.UTC),                               // year 0: falls back
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),                                // five digits: falls back
		time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC),                                   // negative year: falls back
		time.Date(2026, 11, 21, 13, 0, 0, 123_456_789, time.FixedZone("CET", 3600)), // not UTC
	} {
		checkTime(t, tm)
	}
	// Re-stamping computes times with Add, which can go anywhere.
	checkTime(t, time.Unix(0, 0).Add(math.MaxInt64).Add(math.MaxInt64).AddDate(9000, 0, 0))
	checkTime(t, time.Unix(0, 0).Add(math.MinInt64).AddDate(-9000, 0, 0))
}

func TestAppendTimeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		checkTime(t, time.Unix(0, int64(rng.Uint64())))
	}
	// Across the whole fast range, seconds and nanoseconds apart.
	for range 200_000 {
		sec := minFastUnix - 86400 + rng.Int64N(maxFastUnix-minFastUnix+2*86400)
		checkTime(t, time.Unix(sec, rng.Int64N(1e9)))
	}
}

func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(minFastUnix), int64(999_999_999))
	f.Add(int64(maxFastUnix-1), int64(1))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		checkTime(t, time.Unix(sec, nsec))
	})
}

func BenchmarkAppendTime(b *testing.B) {
	tm := sample.Time
	var buf []byte
	b.Run("appendTime", func(b *testing.B) {
		for b.Loop() {
			buf = appendTime(buf[:0], tm)
		}
	})
	b.Run("AppendFormat", func(b *testing.B) {
		for b.Loop() {
			buf = tm.UTC().AppendFormat(buf[:0], TimeLayout)
		}
	})
}
