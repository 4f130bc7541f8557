package w1

import (
	"errors"
	"os"
	"path/filepath"
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
		got, err := ParseSlave([]byte(c.in))
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("%q: %v, %v; want %v, %v", c.in, got, err, c.want, c.err)
		}
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
