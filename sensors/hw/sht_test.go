package hw

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/kitd-dev/kitd/sensors/sensirion"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// words encodes Sensirion words, each followed by its CRC.
func words(ws ...uint16) []byte {
	var b []byte
	for _, w := range ws {
		g := []byte{byte(w >> 8), byte(w)}
		b = append(b, g[0], g[1], sensirion.CRC8(g))
	}
	return b
}

func sht3xOps(t, rh uint16) []i2ctest.IO {
	return []i2ctest.IO{
		// Soft reset; status (bit 4: reset detected).
		{Addr: 0x44, W: []byte{0x30, 0xA2}},
		{Addr: 0x44, W: []byte{0xF3, 0x2D}, R: words(0x0010)},
		// Single shot, high repeatability, no clock stretching; read.
		{Addr: 0x44, W: []byte{0x24, 0x00}},
		{Addr: 0x44, R: words(t, rh)},
	}
}

// The SHT3x-DIS datasheet's conversion formulas (section 4.13):
// T = -45 + 175 * S_T / 65535, RH = 100 * S_RH / 65535.
func TestSHT3xConversion(t *testing.T) {
	for _, c := range []struct {
		st, srh  uint16
		temp, rh float64
	}{
		{0x6666, 0x8000, 25, 100 * 32768.0 / 65535},
		{1873, 0, -45 + 175*1873.0/65535, 0},                  // just above -40 °C, dry
		{0xFFFF - 5617, 0xFFFF, -45 + 175*59918.0/65535, 100}, // 115 °C, saturated
	} {
		bus := playback(sht3xOps(c.st, c.srh)...)
		h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
		v, err := openRead(t, prepare(t, h, "sht3x", map[string]any{"bus": "/dev/i2c-1", "address": 0x44}))
		if err != nil {
			t.Fatal(err)
		}
		wantValues(t, v, map[string]float64{"temperature": c.temp, "humidity": c.rh}, 1e-4)
		closeHost(t, h)
	}
}

// Below the datasheet's -40 °C or above 125 °C is a broken chip or
// transfer, not a reading.
func TestSHT3xOutOfRange(t *testing.T) {
	for _, st := range []uint16{0x0000, 0xFFFF} {
		bus := playback(sht3xOps(st, 0x8000)...)
		h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
		v, err := openRead(t, prepare(t, h, "sht3x", map[string]any{"bus": "/dev/i2c-1", "address": 0x44}))
		var re *RangeError
		if !errors.As(err, &re) || re.Quantity != "temperature" {
			t.Fatalf("0x%04X: %v, %v", st, v, err)
		}
		closeHost(t, h)
	}
}

// Every fault on every transaction ends in an error, never a reading.
func TestSHT3xFaults(t *testing.T) {
	runFaults(t, "sht3x", map[string]any{"bus": "/dev/i2c-1", "address": 0x44}, sht3xOps(0x6666, 0x8000), true)
}

func sht4xOps(t, rh uint16) []i2ctest.IO {
	return []i2ctest.IO{
		// Soft reset; serial number.
		{Addr: 0x44, W: []byte{0x94}},
		{Addr: 0x44, W: []byte{0x89}},
		{Addr: 0x44, R: words(0x0F4A, 0x1B2C)},
		// High precision measurement; read.
		{Addr: 0x44, W: []byte{0xFD}},
		{Addr: 0x44, R: words(t, rh)},
	}
}

// The SHT4x datasheet's formulas (section 4.6): T = -45 + 175 * S_T /
// 65535, RH = -6 + 125 * S_RH / 65535, cropped to 0..100.
func TestSHT4xConversion(t *testing.T) {
	for _, c := range []struct {
		srh uint16
		rh  float64
	}{
		{0x8000, -6 + 125*32768.0/65535},
		{0x0000, 0},   // -6 %RH cropped
		{0xFFFF, 100}, // 119 %RH cropped
	} {
		bus := playback(sht4xOps(0x6666, c.srh)...)
		h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
		v, err := openRead(t, prepare(t, h, "sht4x", map[string]any{"bus": "/dev/i2c-1", "address": 0x44, "precision": "high"}))
		if err != nil {
			t.Fatal(err)
		}
		wantValues(t, v, map[string]float64{"temperature": 25, "humidity": c.rh}, 1e-4)
		closeHost(t, h)
	}
}

func TestSHT4xFaults(t *testing.T) {
	runFaults(t, "sht4x", map[string]any{"bus": "/dev/i2c-1", "address": 0x44}, sht4xOps(0x6666, 0x8000), true)
}

// runFaults replays ops once per transaction with each fault injected
// there: EREMOTEIO (a NACK) and ETIMEDOUT on every transaction, and, on
// every read when the chip's protocol checks its data (crc), a short read
// and a corrupted byte. Each must end in an error from open or read, and
// no values.
func runFaults(t *testing.T, name string, opts map[string]any, ops []i2ctest.IO, crc bool) {
	t.Helper()
	runFaultsExcept(t, name, opts, ops, crc, nil)
}

// runFaultsExcept is runFaults but for the transactions in skip, which
// the driver retries or ignores by design (the reason is the value).
func runFaultsExcept(t *testing.T, name string, opts map[string]any, ops []i2ctest.IO, crc bool, skip map[int]string) {
	t.Helper()
	for i, op := range ops {
		if _, ok := skip[i]; ok {
			continue
		}
		faults := []struct {
			what string
			f    fault
			want func(error) bool
		}{
			{"EREMOTEIO", fault{err: syscall.EREMOTEIO}, isRemoteIO},
			{"ETIMEDOUT", fault{err: syscall.ETIMEDOUT}, func(err error) bool {
				return errors.Is(err, syscall.ETIMEDOUT) || strings.Contains(err.Error(), "timed out")
			}},
		}
		if crc && len(op.R) > 1 {
			faults = append(faults,
				struct {
					what string
					f    fault
					want func(error) bool
				}{"short read", fault{short: 1}, saysCRC},
				struct {
					what string
					f    fault
					want func(error) bool
				}{"corrupt byte", fault{flip: true}, saysCRC},
			)
		}
		for _, f := range faults {
			bus := &faultBus{BusCloser: playback(ops...), faults: map[int]fault{i: f.f}}
			h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
			v, err := openRead(t, prepare(t, h, name, opts))
			if err == nil || v != nil {
				t.Errorf("%s, transaction %d: %v, %v; want an error and no values", f.what, i, v, err)
				continue
			}
			if !f.want(err) {
				t.Errorf("%s, transaction %d: error %q does not say so", f.what, i, err)
			}
			h.Close()
		}
	}
}

func saysCRC(err error) bool { return strings.Contains(strings.ToLower(err.Error()), "crc") }
