package hw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kitd-dev/kitd/sensors/w1"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// board is a bus with chips that answer by address; the others NACK.
type board map[uint16]func(w, r []byte) error

func (b board) Tx(addr uint16, w, r []byte) error {
	if f, ok := b[addr]; ok {
		return f(w, r)
	}
	return fmt.Errorf("sysfs-i2c: %w", syscall.EREMOTEIO)
}
func (b board) SetSpeed(physic.Frequency) error { return nil }
func (b board) String() string                  { return "board" }
func (b board) Close() error                    { return nil }

// register answers reads with bytes for the last register written.
func register(regs map[byte][]byte) func(w, r []byte) error {
	var cur []byte
	return func(w, r []byte) error {
		if len(w) > 0 {
			cur = regs[w[0]]
		}
		copy(r, cur)
		return nil
	}
}

// sensirion answers commands with words; a bare read with nothing
// pending is NACKed, as the chips do.
func sensirionChip(cmds map[string][]byte) func(w, r []byte) error {
	var pending []byte
	return func(w, r []byte) error {
		if len(w) > 0 {
			resp, ok := cmds[fmt.Sprintf("%X", w)]
			if !ok {
				return fmt.Errorf("sysfs-i2c: %w", syscall.EREMOTEIO)
			}
			pending = resp
		}
		if len(r) > 0 {
			if pending == nil {
				return fmt.Errorf("sysfs-i2c: %w", syscall.EREMOTEIO)
			}
			copy(r, pending)
			pending = nil
		}
		return nil
	}
}

func TestScan(t *testing.T) {
	b := board{
		0x76: register(map[byte][]byte{0xD0: {0x60}}),
		0x77: register(map[byte][]byte{0xD0: {0x58}}),
		0x44: sensirionChip(map[string][]byte{"F32D": words(0x0010)}),
		0x45: sensirionChip(map[string][]byte{"89": words(0x0F4A, 0x1B2C)}),
		0x62: sensirionChip(map[string][]byte{"3682": words(0xf896, 0x9f07, 0x3bbe)}),
		0x23: register(nil),
		0x48: register(map[byte][]byte{0x01: {0x85, 0x83}}),
		0x38: register(map[byte][]byte{0x71: {0x18}}),
		0x40: register(nil),
		0x18: register(nil),
	}
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": b})
	w1dir := t.TempDir()
	for _, id := range []string{"28-0316a2795aff", "10-000802b4ad3f", "2d-00000abcdef0", "w1_bus_master1"} {
		os.Mkdir(filepath.Join(w1dir, id), 0o755)
	}
	r, err := h.Scan(context.Background(), w1dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteScan(&out, r); err != nil {
		t.Fatal(err)
	}
	want := `I2C /dev/i2c-1: 10 devices
  0x18  DS2482?  (by address)
  0x23  BH1750?  (by address; it has no ID register)
  0x38  AHT20  (status 0x18, calibrated)
  0x40  INA219?  (by address)
  0x44  SHT3x  (status 0x0010, CRC ok)
  0x45  SHT4x  (serial 0F4A1B2C, CRC ok)
  0x48  ADS1115/ADS1015?  (config 0x8583; or an INA219)
  0x62  SCD4x  (serial F8969F073BBE, CRC ok)
  0x76  BME280  (chip id 0x60 at 0xD0)
  0x77  BMP280  (chip id 0x58 at 0xD0)
1-Wire ` + w1dir + `: 3 devices
  10-000802b4ad3f  DS18S20
  28-0316a2795aff  DS18B20
  2d-00000abcdef0  not a thermometer kitd reads
`
	if out.String() != want {
		t.Errorf("scan output:\n%s\nwant:\n%s", out.String(), want)
	}
	h.Close()
}

// A board with nothing: plain advice, not an error.
func TestScanEmptyBoard(t *testing.T) {
	h := testHost(t, nil)
	r, err := h.Scan(context.Background(), filepath.Join(t.TempDir(), "absent"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WriteScan(&out, r)
	for _, s := range []string{noBusesHint, "dtoverlay=w1-gpio"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output %q lacks %q", out.String(), s)
		}
	}
}

func TestScanBusErrors(t *testing.T) {
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": board{}})
	h.ListBuses = func() ([]string, error) { return []string{"/dev/i2c-1", "/dev/i2c-2"}, nil }
	h.OpenBus = func(name string) (i2c.BusCloser, error) {
		if name == "/dev/i2c-2" {
			return nil, busOpenError(name, syscall.EACCES)
		}
		return board{}, nil
	}
	r, err := h.Scan(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WriteScan(&out, r)
	for _, s := range []string{"I2C /dev/i2c-1: no device answers", "I2C /dev/i2c-2: cannot open: /dev/i2c-2: permission denied: add the service user to group i2c"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output %q lacks %q", out.String(), s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Scan(ctx, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: %v", err)
	}
	h.Close()
}

func TestW1List(t *testing.T) {
	if d, err := w1.List(filepath.Join(t.TempDir(), "none")); err != nil || d != nil {
		t.Fatalf("missing dir: %v, %v", d, err)
	}
}
