package telemetry

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// randomReading makes readings that stress the encoders: names with
// quotes, control bytes, multi-byte and invalid UTF-8, names that are
// prefixes of each other, values that are integers, tiny, huge, negative
// zero, NaN and infinities, times across the record's range.
func randomReading(rng *rand.Rand) Reading {
	pick := []string{"temperature", "humidity", "pressure", "moisture", "co2", "t", "te", "a\"b", "x\\y",
		"line\nfeed", "\x01ctl", "ünïcode", "日本", "bad\xff\xfeutf8", "", "Z", "zz"}
	r := Reading{
		Sensor: pick[rng.IntN(len(pick))] + pick[rng.IntN(len(pick))],
		Time:   time.Unix(0, int64(rng.Uint64())),
		Clock:  ClockState(rng.IntN(3)),
		Boot:   rng.Uint64(),
		Mono:   time.Duration(rng.Int64()),
		Values: map[string]float64{},
	}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 61.5, 21.37, 1013.25, 1e21, 1e-7, 5e-324,
		math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1), 123456789.123}
	for range rng.IntN(8) {
		name := pick[rng.IntN(len(pick))]
		switch rng.IntN(3) {
		case 0:
			r.Values[name] = floats[rng.IntN(len(floats))]
		case 1:
			r.Values[name] = math.Float64frombits(rng.Uint64())
		default:
			r.Values[name] = float64(rng.IntN(100000)) / 100
		}
	}
	return r
}

// viewMatches checks every output of the view against the reference path
// (unmarshalRecord, then appendMessage and appendItem).
func viewMatches(t *testing.T, rec []byte, seq uint64, device, epoch string) {
	t.Helper()
	r, uerr := unmarshalRecord(rec)
	v, perr := ParseRecord(rec)
	if perr == nil && v.IsGap() {
		return // gap records are the view's alone; TestGapRecord covers them
	}
	if (uerr == nil) != (perr == nil) {
		t.Fatalf("reference: %v, ParseRecord: %v, for %x", uerr, perr, rec)
	}
	if uerr != nil {
		if uerr.Error() != perr.Error() || !errors.Is(perr, ErrRecord) {
			t.Fatalf("reference: %v, ParseRecord: %v, for %x", uerr, perr, rec)
		}
		return
	}
	if got, want := AppendRecordMessage(nil, device, epoch, seq, &v), appendMessage(nil, device, epoch, seq, r); string(got) != string(want) {
		t.Fatalf("record %x\nview      %s\nreference %s", rec, got, want)
	}
	if got, want := AppendRecordItem([]byte("prefix"), seq, &v), appendItem([]byte("prefix"), seq, r); string(got) != string(want) {
		t.Fatalf("record %x\nview      %s\nreference %s", rec, got, want)
	}
	if v.Sensor() != r.Sensor || v.Clock != r.Clock || !v.Time.Equal(r.Time) || v.Boot != r.Boot || v.Mono != r.Mono {
		t.Fatalf("header: view %+v, reading %+v", v, r)
	}
	if got := v.Reading(); !reflect.DeepEqual(got.Values, r.Values) && !hasNaN(r.Values) {
		t.Fatalf("values: view %v, reading %v", got.Values, r.Values)
	}
}

func hasNaN(m map[string]float64) bool {
	for _, v := range m {
		if math.IsNaN(v) {
			return true
		}
	}
	return false
}

func TestRecordViewMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 100_000 {
		rec, err := MarshalRecord(nil, randomReading(rng))
		if err != nil {
			t.Fatal(err)
		}
		viewMatches(t, rec, rng.Uint64()>>rng.IntN(64), "kit-001", []string{"", "3f2a9c", "é\""}[i%3])
	}
}

// Records MarshalRecord never writes but whose checksum may still hold:
// names unordered or repeated (the map keeps the last), so the view takes
// its slow path; and every truncation and a trailing byte.
func TestRecordViewOddRecords(t *testing.T) {
	hand := func(names []string, vals []float64) []byte {
		b, _ := MarshalRecord(nil, Reading{Sensor: "s", Time: sample.Time})
		b = b[:len(b)-1]
		b = append(b, byte(len(names)))
		for i, n := range names {
			b = append(b, byte(len(n)))
			b = append(b, n...)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(vals[i]))
		}
		return b
	}
	for _, c := range []struct {
		rec    []byte
		sorted bool
	}{
		{hand([]string{"b", "a"}, []float64{1, 2}), false},
		{hand([]string{"a", "a"}, []float64{1, 2}), false},
		{hand([]string{"a", "b", "a"}, []float64{1, 2, 3}), false},
		{hand([]string{"ab", "a"}, []float64{1, 2}), false},
		{hand([]string{"a", "ab"}, []float64{1, 2}), true},
		{hand(nil, nil), true},
	} {
		v, err := ParseRecord(c.rec)
		if err != nil {
			t.Fatal(err)
		}
		if v.sorted != c.sorted {
			t.Fatalf("%x: sorted %v, want %v", c.rec, v.sorted, c.sorted)
		}
		viewMatches(t, c.rec, 9, "d", "")
		for i := range c.rec {
			viewMatches(t, c.rec[:i], 9, "d", "")
		}
		viewMatches(t, append(c.rec[:len(c.rec):len(c.rec)], 0), 9, "d", "")
	}
	for _, rec := range [][]byte{nil, {1}, {2}, {1, 3}, {1, 2}, {0, 9}} {
		viewMatches(t, rec, 1, "d", "")
	}
}

// The view re-stamps as Reading does, and the output still matches.
func TestRecordViewRestamp(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	now := time.Date(2026, 11, 21, 12, 10, 0, 0, time.UTC)
	for range 20_000 {
		r := randomReading(rng)
		r.Clock = ClockUnsynced
		if rng.IntN(2) == 0 {
			r.Boot = 7
		}
		if rng.IntN(2) == 0 {
			r.Mono = time.Duration(rng.Int64N(int64(time.Hour)))
		}
		rec, err := MarshalRecord(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		nowMono := time.Duration(rng.Int64N(int64(2 * time.Hour)))
		ref, _ := unmarshalRecord(rec)
		restampReading(&ref, now, nowMono, 7)
		v, _ := ParseRecord(rec)
		v.Restamp(now, nowMono, 7)
		if v.Clock != ref.Clock || !v.Time.Equal(ref.Time) {
			t.Fatalf("view %v %v, reading %v %v", v.Time, v.Clock, ref.Time, ref.Clock)
		}
		if got, want := AppendRecordItem(nil, 1, &v), appendItem(nil, 1, ref); string(got) != string(want) {
			t.Fatalf("view %s\nreference %s", got, want)
		}
	}
}

func TestRecordViewNoAllocs(t *testing.T) {
	rec, _ := MarshalRecord(nil, Reading{Sensor: "soil-1", Time: sample.Time, Values: map[string]float64{"temperature": 21.5, "humidity": 40.25}})
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() {
		v, err := ParseRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		buf = AppendRecordMessage(buf[:0], "kit-001", "3f2a9c", 42, &v)
	}); n != 0 {
		t.Fatalf("%v allocations per reading, want 0", n)
	}
}

func FuzzRecordView(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 8 {
		b, _ := MarshalRecord(nil, randomReading(rng))
		f.Add(b, uint64(42), "kit-001", "ep")
	}
	f.Add([]byte{1, 0}, uint64(1), "", "")
	f.Fuzz(func(t *testing.T, rec []byte, seq uint64, device, epoch string) {
		viewMatches(t, rec, seq, device, epoch)
	})
}

func BenchmarkTranscode(b *testing.B) {
	r := sample
	r.Values = map[string]float64{"temperature": 21.5, "humidity": 40.25, "pressure": 1013.25}
	rec, _ := MarshalRecord(nil, r)
	var buf []byte
	b.Run("view", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, _ := ParseRecord(rec)
			buf = AppendRecordMessage(buf[:0], "kit-001", "3f2a9c", 123456, &v)
		}
	})
	b.Run("decode+encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, _ := unmarshalRecord(rec)
			buf = appendMessage(buf[:0], "kit-001", "3f2a9c", 123456, r)
		}
	})
}
