package datasize

import "testing"

func TestParse(t *testing.T) {
	good := map[string]Size{
		"0": 0, "4096": 4096, "64KiB": 64 * KiB, "64 KiB": 64 * KiB, "256MiB": 256 * MiB,
		"1GiB": GiB, "2mb": 2 * MiB, "10k": 10 * KiB, "12b": 12,
	}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "ten", "-", "99999999999GiB", "1 TiB"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, s := range []Size{0, 1, 1000, KiB, 3 * MiB, 256 * MiB, 2 * GiB, MiB + 1} {
		got, err := Parse(s.String())
		if err != nil || got != s {
			t.Errorf("%d -> %q -> %d, %v", s, s.String(), got, err)
		}
	}
}
