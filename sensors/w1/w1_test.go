package w1

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSlave(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		err  error
	}{
		{"72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n", 23.125, nil},
		{"72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n", 0, ErrCRC},
		{"ff ff ff ff ff ff ff ff ff : crc=ff YES\nff ff ff ff ff ff ff ff ff t=-62\n", 0, ErrOpenLine},
		{"00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n", 0, ErrAllZero},
		{"72 01 4b : crc=57 YES\n72 01 4b t=23125\n", 0, ErrFormat},
		{"zz 01 4b 46 7f ff 0e 10 57 : crc=57 YES\nx t=1\n", 0, ErrFormat},
		{"72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=x\n", 0, ErrFormat},
		{"", 0, ErrFormat},
	} {
		got, err := ParseSlave([]byte(c.in), 0x28)
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("%q: %v, %v; want %v, %v", c.in, got, err, c.want, c.err)
		}
	}
}

// DS18S20 datasheet Table 1: +25 °C is 0x0032; COUNT_REMAIN 0x0C and
// COUNT_PER_C 0x10 refine it to 25.0 (kernel t=25000).
func TestParseSlaveDS18S20(t *testing.T) {
	in := "32 00 4b 46 ff ff 0c 10 6b : crc=6b YES\n32 00 4b 46 ff ff 0c 10 6b t=25000\n"
	got, err := ParseSlave([]byte(in), 0x10)
	if err != nil || got != 25 {
		t.Fatalf("%v, %v", got, err)
	}
	if _, err := ParseSlave([]byte(strings.Replace(in, "t=25000", "t=25500", 1)), 0x10); !errors.Is(err, ErrMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	// -0.0625 °C (raw 0xFFFF) is -62 m°C in the kernel's integer division.
	in = "ff ff 4b 46 7f ff 01 10 9a : crc=9a YES\nff ff 4b 46 7f ff 01 10 9a t=-62\n"
	if got, err := ParseSlave([]byte(in), 0x28); err != nil || got != -0.0625 {
		t.Fatalf("-0.0625: %v, %v", got, err)
	}
}

func TestParseTemperature(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		err  error
	}{
		{"-10125\n", -10.125, nil},
		{"0\n", 0, nil}, // without a scratchpad, 0 °C cannot be doubted
		{"-63\n", 0, ErrOpenLine},
		{"127937\n", 0, ErrBadValue},
		{"85000", 0, ErrPowerOn},
		{"", 0, ErrFormat},
	} {
		got, err := ParseTemperature([]byte(c.in))
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("%q: %v, %v; want %v, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestIDs(t *testing.T) {
	for id, ok := range map[string]bool{"28-0316a2795aff": true, "10-000802b4ad3f": true, "28-0316A2795AFF": false, "2d-000000000000": false, "28-0316a2795af": false} {
		if IsThermometerID(id) != ok {
			t.Errorf("IsThermometerID(%q) != %v", id, ok)
		}
	}
}

func TestResolution(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "28-0316a2795aff"), 0o755)
	if _, ok, err := Resolution(dir, "28-0316a2795aff"); ok || err != nil {
		t.Fatalf("no file: %v, %v", ok, err)
	}
	os.WriteFile(filepath.Join(dir, "28-0316a2795aff", "resolution"), []byte("nine\n"), 0o644)
	if _, _, err := Resolution(dir, "28-0316a2795aff"); !errors.Is(err, ErrFormat) {
		t.Fatalf("garbage: %v", err)
	}
	if err := SetResolution(dir, "28-0316a2795aff", 11); err != nil {
		t.Fatal(err)
	}
	if bits, ok, err := Resolution(dir, "28-0316a2795aff"); bits != 11 || !ok || err != nil {
		t.Fatalf("%d, %v, %v", bits, ok, err)
	}
}
