package hw

import (
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

func adsOps(addr uint16, config [2]byte, code [2]byte) []i2ctest.IO {
	return []i2ctest.IO{
		// Open: the config register (power-on value 0x8583) proves a chip.
		{Addr: addr, W: []byte{0x01}, R: []byte{0x85, 0x83}},
		// Single shot: write config; after one period the config
		// register reads OS=1 (done) and the settings written; read the
		// conversion register.
		{Addr: addr, W: []byte{0x01, config[0], config[1]}},
		{Addr: addr, W: []byte{0x01}, R: config[:]},
		{Addr: addr, W: []byte{0x00}, R: code[:]},
	}
}

// ADS1115 datasheet (SBAS444D) Table 3 "Ideal Output Code Versus Input
// Signal", at FSR ±4.096 V (LSB 125 µV): the ±FS codes are saturation and
// are errors, the others voltages.
func TestADS1115CodeTable(t *testing.T) {
	// OS | MUX AIN0 | PGA 4.096 | single shot | 128 SPS | comparator off.
	cfg := [2]byte{0xC3, 0x83}
	for _, c := range []struct {
		code      [2]byte
		volts     float64
		saturated bool
	}{
		{[2]byte{0x7F, 0xFF}, 0, true},
		{[2]byte{0x40, 0x00}, 2.048, false},
		{[2]byte{0x00, 0x01}, 125e-6, false},
		{[2]byte{0x00, 0x00}, 0, false},
		{[2]byte{0xFF, 0xFF}, -125e-6, false},
		{[2]byte{0x80, 0x00}, 0, true},
	} {
		bus := playback(adsOps(0x48, cfg, c.code)...)
		h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
		v, err := openRead(t, prepare(t, h, "ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48}))
		if c.saturated {
			if err == nil || !strings.Contains(err.Error(), "saturated") {
				t.Errorf("code %X: %v, %v; want saturation", c.code, v, err)
			}
		} else {
			if err != nil {
				t.Fatalf("code %X: %v", c.code, err)
			}
			wantValues(t, v, map[string]float64{"voltage": c.volts}, 1e-12)
		}
		closeHost(t, h)
	}
}

// ADS1015 datasheet (SBAS473E) Table 3: at FSR ±2.048 V the 12-bit LSB
// is 1 mV; the code sits left-justified in the 16-bit register.
func TestADS1015Code(t *testing.T) {
	// OS | MUX AIN2 | PGA 2.048 | single shot | 1600 SPS | comparator off.
	cfg := [2]byte{0xE5, 0x83}
	bus := playback(adsOps(0x49, cfg, [2]byte{0x3E, 0x80})...) // code 0x3E8 = 1000
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	v, err := openRead(t, prepare(t, h, "ads1015", map[string]any{"bus": "/dev/i2c-1", "address": 0x49, "channel": 2, "full_scale": 2.048, "raw": true}))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, map[string]float64{"voltage": 1.0, "raw": 1000}, 1e-12)
	closeHost(t, h)
}

// Moisture from the two calibration points, clamped at both ends.
func TestADS1115Moisture(t *testing.T) {
	cfg := [2]byte{0xC3, 0x83}
	for _, c := range []struct {
		count int16
		want  float64
	}{{19000, 50}, {26000, 0}, {12000, 100}, {30000, 0}, {10000, 100}, {22500, 25}} {
		code := [2]byte{byte(uint16(c.count) >> 8), byte(c.count)}
		bus := playback(adsOps(0x48, cfg, code)...)
		h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
		v, err := openRead(t, prepare(t, h, "ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "dry": 26000, "wet": 12000}))
		if err != nil {
			t.Fatal(err)
		}
		wantValues(t, v, map[string]float64{"voltage": float64(c.count) * 4.096 / 32768, "moisture": c.want}, 1e-9)
		closeHost(t, h)
	}
}

// The ADS1x15 has no CRC: only bus errors are detectable.
func TestADS1115Faults(t *testing.T) {
	runFaults(t, "ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48}, adsOps(0x48, [2]byte{0xC3, 0x83}, [2]byte{0x10, 0}), false)
}

func bh1750Ops(count [2]byte) []i2ctest.IO {
	return []i2ctest.IO{
		// Open: power on, reset (accepted only when powered on), power
		// down.
		{Addr: 0x23, W: []byte{0x01}},
		{Addr: 0x23, W: []byte{0x07}},
		{Addr: 0x23, W: []byte{0x00}},
		// Read: power on, one-time high resolution; read.
		{Addr: 0x23, W: []byte{0x01}},
		{Addr: 0x23, W: []byte{0x20}},
		{Addr: 0x23, R: count[:]},
		// Close: power down.
		{Addr: 0x23, W: []byte{0x00}},
	}
}

// BH1750FVI datasheet p.7: "High Byte = 1000_0011, Low Byte = 1001_0000:
// (2^15 + 2^9 + 2^8 + 2^7 + 2^4) / 1.2 ≈ 28067 lx".
func TestBH1750DatasheetExample(t *testing.T) {
	bus := playback(bh1750Ops([2]byte{0x83, 0x90})...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	v, err := openRead(t, prepare(t, h, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23}))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, map[string]float64{"illuminance": 33680 / 1.2}, 1e-9)
	if v["illuminance"] < 28066.5 || v["illuminance"] > 28067.5 {
		t.Errorf("illuminance %v, want ≈ 28067", v["illuminance"])
	}
	closeHost(t, h)
}

// A count of 1 is 0.83 lx, not the 0 periph's own Sense returns.
func TestBH1750Dark(t *testing.T) {
	bus := playback(bh1750Ops([2]byte{0x00, 0x01})...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	v, err := openRead(t, prepare(t, h, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23}))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, map[string]float64{"illuminance": 1 / 1.2}, 1e-12)
	closeHost(t, h)
}

func TestBH1750Faults(t *testing.T) {
	ops := bh1750Ops([2]byte{0x83, 0x90})
	runFaults(t, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23}, ops[:len(ops)-1], false)
}

func ina219Ops(shunt, bus, current, power uint16) []i2ctest.IO {
	be := func(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }
	return []i2ctest.IO{
		// Open: calibration 4194 (0x1062), configuration 0x1FFF, then
		// the bus register until CNVR says a conversion used them.
		{Addr: 0x40, W: []byte{0x05, 0x10, 0x62}},
		{Addr: 0x40, W: []byte{0x00, 0x1F, 0xFF}},
		{Addr: 0x40, W: []byte{0x02}, R: be(bus)},
		// Read: configuration and calibration as written (no reset).
		{Addr: 0x40, W: []byte{0x00}, R: be(0x1FFF)},
		{Addr: 0x40, W: []byte{0x05}, R: be(0x1062)},
		{Addr: 0x40, W: []byte{0x01}, R: be(shunt)},
		{Addr: 0x40, W: []byte{0x02}, R: be(bus)},
		{Addr: 0x40, W: []byte{0x04}, R: be(current)},
		{Addr: 0x40, W: []byte{0x03}, R: be(power)},
		// Close: power down.
		{Addr: 0x40, W: []byte{0x00, 0x1F, 0xF8}},
	}
}

// INA219 datasheet (SBOS448G) section 8.5.1, equations 1 to 5, with the
// default 0.1 Ω shunt and 3.2 A maximum: Current_LSB = 3.2 / 2^15 A,
// Cal = trunc(0.04096 / (Current_LSB × 0.1)) = 4194, Power_LSB = 20 ×
// Current_LSB. A 40 mV shunt voltage (register 4000 × 10 µV) gives
// Current = 4000 × 4194 / 4096 = 4095 counts (0.39990 A); a 12 V bus is
// 3000 × 4 mV (register 3000 << 3, CNVR set); Power = 4095 × 3000 / 5000
// = 2457 counts (4.7988 W).
func TestINA219DatasheetEquations(t *testing.T) {
	bus := playback(ina219Ops(4000, 3000<<3|2, 4095, 2457)...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	v, err := openRead(t, prepare(t, h, "ina219", map[string]any{"bus": "/dev/i2c-1", "address": 0x40}))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, map[string]float64{"voltage": 12, "current": 4095 * 3.2 / 32768, "power": 2457 * 20 * 3.2 / 32768}, 1e-12)
	if v["current"] < 0.3998 || v["current"] > 0.4 || v["power"] < 4.798 || v["power"] > 4.8 {
		t.Errorf("values %v, want ≈ 0.4 A and 4.8 W", v)
	}
	closeHost(t, h)
}

// An overflowing conversion (OVF, bit 0 of the bus register) is an error.
func TestINA219Overflow(t *testing.T) {
	ops := ina219Ops(4000, 3000<<3|3, 0, 0)
	bus := playback(append(ops[:7:7], ops[9])...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	_, err := openRead(t, prepare(t, h, "ina219", map[string]any{"bus": "/dev/i2c-1", "address": 0x40}))
	if err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Fatalf("err = %v", err)
	}
	closeHost(t, h)
}

// A shunt register at PGA /8's full scale (320 mV) is an overflow too.
func TestINA219ShuntFullScale(t *testing.T) {
	for _, shunt := range []uint16{32000, 0x10000 - 32000} {
		ops := ina219Ops(shunt, 3000<<3|2, 0, 0)
		bus := playback(append(ops[:6:6], ops[9])...)
		h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
		_, err := openRead(t, prepare(t, h, "ina219", map[string]any{"bus": "/dev/i2c-1", "address": 0x40}))
		if !errors.Is(err, ErrINA219Overflow) {
			t.Fatalf("shunt 0x%04X: err = %v", shunt, err)
		}
		closeHost(t, h)
	}
}

func TestINA219Faults(t *testing.T) {
	ops := ina219Ops(4000, 3000<<3|2, 4095, 2457)
	// The close transaction is after the read: a fault there loses no
	// reading.
	runFaults(t, "ina219", map[string]any{"bus": "/dev/i2c-1", "address": 0x40}, ops[:len(ops)-1], false)
}

func aht20Ops(data []byte) []i2ctest.IO {
	return []i2ctest.IO{
		// Status: calibrated (bit 3).
		{Addr: 0x38, W: []byte{0x71}, R: []byte{0x18}},
		// Trigger; read status, humidity, temperature, CRC.
		{Addr: 0x38, W: []byte{0xAC, 0x33, 0x00}},
		{Addr: 0x38, R: data},
	}
}

// The AHT20 datasheet gives formulas, no example: the bytes were
// recorded on a device by periph's authors (aht20_test.go, TestSense)
// with their expected 19.4458 °C and 45.82824 %RH.
func TestAHT20Recorded(t *testing.T) {
	bus := playback(aht20Ops([]byte{0x18, 0x75, 0x52, 0x05, 0x8E, 0x40, 0x7F})...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	v, err := openRead(t, prepare(t, h, "aht20", map[string]any{"bus": "/dev/i2c-1", "address": 0x38}))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, map[string]float64{"temperature": 19.445800781, "humidity": 45.82824}, 1e-6)
	closeHost(t, h)
}

func TestAHT20Faults(t *testing.T) {
	runFaults(t, "aht20", map[string]any{"bus": "/dev/i2c-1", "address": 0x38}, aht20Ops([]byte{0x18, 0x75, 0x52, 0x05, 0x8E, 0x40, 0x7F}), true)
}

func scd4xOps(measurement []byte) []i2ctest.IO {
	return []i2ctest.IO{
		// Stop any periodic measurement; serial number (datasheet 3.9.2
		// example: 0xf896, 0x9f07, 0x3bbe), written, then read after
		// its 1 ms execution time.
		{Addr: 0x62, W: []byte{0x3f, 0x86}},
		{Addr: 0x62, W: []byte{0x36, 0x82}},
		{Addr: 0x62, R: words(0xf896, 0x9f07, 0x3bbe)},
		// Start periodic measurement.
		{Addr: 0x62, W: []byte{0x21, 0xb1}},
		// Data ready: not yet (the first measurement takes 5 s), then
		// ready; read measurement. Each command, then its response.
		{Addr: 0x62, W: []byte{0xe4, 0xb8}},
		{Addr: 0x62, R: words(0x8000)},
		{Addr: 0x62, W: []byte{0xe4, 0xb8}},
		{Addr: 0x62, R: words(0x8006)},
		{Addr: 0x62, W: []byte{0xec, 0x05}},
		{Addr: 0x62, R: measurement},
		// Close: stop periodic measurement.
		{Addr: 0x62, W: []byte{0x3f, 0x86}},
	}
}

// SCD4x datasheet section 3.6.2 read_measurement example: 0x01f4 (CRC
// 0x33), 0x6667 (0xa2), 0x5eb9 (0x3c) is 500 ppm, 25 °C, 37 %RH.
func TestSCD4xDatasheetExample(t *testing.T) {
	m := []byte{0x01, 0xf4, 0x33, 0x66, 0x67, 0xa2, 0x5e, 0xb9, 0x3c}
	bus := playback(scd4xOps(m)...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	v, err := openRead(t, prepare(t, h, "scd4x", map[string]any{"bus": "/dev/i2c-1", "address": 0x62}))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, map[string]float64{"co2": 500, "temperature": 25, "humidity": 37}, 0.01)
	closeHost(t, h)
}

func TestSCD4xOutOfRange(t *testing.T) {
	bus := playback(scd4xOps(words(50000, 0x6667, 0x5eb9))...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	_, err := openRead(t, prepare(t, h, "scd4x", map[string]any{"bus": "/dev/i2c-1", "address": 0x62}))
	var re *RangeError
	if !errors.As(err, &re) || re.Quantity != "co2" {
		t.Fatalf("err = %v", err)
	}
	closeHost(t, h)
}

func TestSCD4xFaults(t *testing.T) {
	ops := scd4xOps([]byte{0x01, 0xf4, 0x33, 0x66, 0x67, 0xa2, 0x5e, 0xb9, 0x3c})
	// The close transaction is after the read: a fault there loses no
	// reading.
	ops = ops[:len(ops)-1]
	runFaults(t, "scd4x", map[string]any{"bus": "/dev/i2c-1", "address": 0x62}, ops, true)
}

// The driver polls the config register until OS reads 1, and a config
// register back at its power-on value (the chip reset between the start
// and the poll) is an error, not the conversion of some other input.
func TestADS1115PollsOSAndDetectsReset(t *testing.T) {
	cfg := []byte{0xC3, 0x83}
	busy := []byte{0x43, 0x83}
	bus := playback(
		i2ctest.IO{Addr: 0x48, W: []byte{0x01}, R: []byte{0x85, 0x83}},
		i2ctest.IO{Addr: 0x48, W: []byte{0x01, 0xC3, 0x83}},
		i2ctest.IO{Addr: 0x48, W: []byte{0x01}, R: busy},
		i2ctest.IO{Addr: 0x48, W: []byte{0x01}, R: busy},
		i2ctest.IO{Addr: 0x48, W: []byte{0x01}, R: cfg},
		i2ctest.IO{Addr: 0x48, W: []byte{0x00}, R: []byte{0x40, 0x00}},
	)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	v, err := openRead(t, prepare(t, h, "ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48}))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, map[string]float64{"voltage": 2.048}, 1e-12)
	closeHost(t, h)

	bus = playback(
		i2ctest.IO{Addr: 0x48, W: []byte{0x01}, R: []byte{0x85, 0x83}},
		i2ctest.IO{Addr: 0x48, W: []byte{0x01, 0xC3, 0x83}},
		i2ctest.IO{Addr: 0x48, W: []byte{0x01}, R: []byte{0x85, 0x83}},
	)
	h = testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	v, err = openRead(t, prepare(t, h, "ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48}))
	if err == nil || !strings.Contains(err.Error(), "reads 0x8583") {
		t.Fatalf("reset chip: %v, %v", v, err)
	}
	closeHost(t, h)
}
