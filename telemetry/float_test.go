package telemetry

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

func checkFloat(t *testing.T, v float64) {
	t.Helper()
	want := "null"
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		want = strconv.FormatFloat(v, 'f', -1, 64)
	}
	if got := appendFloat(nil, v); string(got) != want {
		t.Fatalf("appendFloat(%v, bits %#x) = %s, strconv %s", v, math.Float64bits(v), got, want)
	}
}

// appendFloat's few-decimals path must write what strconv writes: values
// with up to and past six decimals, at and around the magnitude bound,
// their float neighbours (which have no short form), and random bits.
func TestAppendFloatMatchesStrconv(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 0.2, 0.3, 0.30000000000000004, 1e-6, 1e-7, 5e-7,
		0.000001, 0.0000015, 1.000001, 123456789.123456, 1125899906.842624, 1125899906.842625, 1e9, 1e15, 1e21, 1e22,
		5e-324, math.MaxFloat64, -math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1), 20.3, 21.37, 1013.25, 61.5,
		99.99, 9.999999, 0.999999, 0.9999995, 100000.5, 2.5, 1 << 53, 1<<50 + 1, float64(1<<50) / 1e6} {
		checkFloat(t, v)
		checkFloat(t, -v)
		checkFloat(t, math.Nextafter(v, math.Inf(1)))
		checkFloat(t, math.Nextafter(v, math.Inf(-1)))
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 300_000 {
		// n / 10^k for k 0..9: short forms, and (k > 6) ones just past
		// the fast path.
		k := rng.IntN(10)
		n := rng.Int64N(int64(math.Pow10(rng.IntN(16) + 1)))
		v := float64(n) / math.Pow10(k)
		checkFloat(t, v)
		checkFloat(t, -v)
		checkFloat(t, math.Nextafter(v, 0))
		// as drivers compute them: raw counts times a scale
		checkFloat(t, math.Round(float64(rng.IntN(1<<16))*175.0/65535*100)/100-45)
		checkFloat(t, math.Float64frombits(rng.Uint64()))
	}
}

func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, 21.5, 1e-6, 1125899906.842624, 0.1} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) { checkFloat(t, v) })
}

func BenchmarkAppendFloat(b *testing.B) {
	var buf []byte
	for _, v := range []float64{21.37, 1013.25, 21.369999999999997} {
		b.Run(strconv.FormatFloat(v, 'g', -1, 64), func(b *testing.B) {
			for b.Loop() {
				buf = appendFloat(buf[:0], v)
			}
		})
		b.Run("strconv/"+strconv.FormatFloat(v, 'g', -1, 64), func(b *testing.B) {
			for b.Loop() {
				buf = strconv.AppendFloat(buf[:0], v, 'f', -1, 64)
			}
		})
	}
}
