package hw

import (
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// BMP180 datasheet (BST-BMP180-DS000-09), section 3.5 "Calculating
// pressure and temperature": the worked example's calibration, read from
// 0xAA..0xBF big-endian.
var bmp180Cal = []byte{
	0x01, 0x98, // AC1 = 408
	0xFF, 0xB8, // AC2 = -72
	0xC7, 0xD1, // AC3 = -14383
	0x7F, 0xE5, // AC4 = 32741
	0x7F, 0xF5, // AC5 = 32757
	0x5A, 0x71, // AC6 = 23153
	0x18, 0x2E, // B1 = 6190
	0x00, 0x04, // B2 = 4
	0x80, 0x00, // MB = -32768
	0xDD, 0xF9, // MC = -8711
	0x0B, 0x34, // MD = 2868
}

func bmp180Ops() []i2ctest.IO {
	return []i2ctest.IO{
		// Chip id.
		{Addr: 0x77, W: []byte{0xD0}, R: []byte{0x55}},
		// Calibration.
		{Addr: 0x77, W: []byte{0xAA}, R: bmp180Cal},
		// Start temperature; SCO (bit 5) clear after periph's sleep;
		// read UT = 27898.
		{Addr: 0x77, W: []byte{0xF4, 0x2E}},
		{Addr: 0x77, W: []byte{0xF4}, R: []byte{0x0E}},
		{Addr: 0x77, W: []byte{0xF6}, R: []byte{0x6C, 0xFA}},
		// Start pressure at oss 0; SCO clear; read UP = 23843.
		{Addr: 0x77, W: []byte{0xF4, 0x34}},
		{Addr: 0x77, W: []byte{0xF4}, R: []byte{0x14}},
		{Addr: 0x77, W: []byte{0xF6}, R: []byte{0x5D, 0x23, 0x00}},
	}
}

func TestBMP180DatasheetExample(t *testing.T) {
	bus := playback(bmp180Ops()...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	open := prepare(t, h, "bmp180", map[string]any{"bus": "/dev/i2c-1", "address": 0x77, "oversampling": 1})
	v, err := openRead(t, open)
	if err != nil {
		t.Fatal(err)
	}
	// The datasheet: T = 150 (15.0 °C), p = 69964 Pa.
	wantValues(t, v, map[string]float64{"temperature": 15.0, "pressure": 699.64}, 1e-9)
	closeHost(t, h)
}

// BMP280 datasheet (BST-BMP280-DS001-26), section 8.2 / Table "Compensation
// computation example": the same formulas as the BME280's temperature and
// pressure, with its calibration little-endian from 0x88.
var bmp280Cal = []byte{
	0x70, 0x6B, // dig_T1 = 27504
	0x43, 0x67, // dig_T2 = 26435
	0x18, 0xFC, // dig_T3 = -1000
	0x7D, 0x8E, // dig_P1 = 36477
	0x43, 0xD6, // dig_P2 = -10685
	0xD0, 0x0B, // dig_P3 = 3024
	0x27, 0x0B, // dig_P4 = 2855
	0x8C, 0x00, // dig_P5 = 140
	0xF9, 0xFF, // dig_P6 = -7
	0x8C, 0x3C, // dig_P7 = 15500
	0xF8, 0xC6, // dig_P8 = -14600
	0x70, 0x17, // dig_P9 = 6000
	0x00, 0x00, // reserved, dig_H1 (BME280 only)
}

func bmp280Ops(id byte) []i2ctest.IO {
	return []i2ctest.IO{
		{Addr: 0x76, W: []byte{0xD0}, R: []byte{id}},
		{Addr: 0x76, W: []byte{0x88}, R: bmp280Cal},
		// Sleep mode, config, ctrl_meas again (oversampling 1: 0x24).
		{Addr: 0x76, W: []byte{0xF4, 0x24, 0xF5, 0xA0, 0xF4, 0x24}},
		// ctrl_hum (reserved on the BMP280), status, ctrl_meas and
		// config as written: no reset since.
		{Addr: 0x76, W: []byte{0xF2}, R: []byte{0x00, 0x00, 0x24, 0xA0}},
		// Forced mode.
		{Addr: 0x76, W: []byte{0xF4, 0x25}},
		// Status: measuring, then done.
		{Addr: 0x76, W: []byte{0xF3}, R: []byte{0x08}},
		{Addr: 0x76, W: []byte{0xF3}, R: []byte{0x00}},
		// adc_P = 415148, adc_T = 519888.
		{Addr: 0x76, W: []byte{0xF7}, R: []byte{0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00}},
		// The data registers again, checked for skipped values.
		{Addr: 0x76, W: []byte{0xF7}, R: []byte{0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00}},
	}
}

func TestBMP280DatasheetExample(t *testing.T) {
	bus := playback(bmp280Ops(0x58)...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	open := prepare(t, h, "bmp280", map[string]any{"bus": "/dev/i2c-1", "address": 0x76, "oversampling": 1})
	v, err := openRead(t, open)
	if err != nil {
		t.Fatal(err)
	}
	// The datasheet: T = 25.08 °C and p = 100653.27 Pa, worked in
	// floating point. periph uses the datasheet's 64-bit integer formula,
	// which gives 25767233 / 256 = 100653.254 Pa for the same inputs: the
	// two agree to 0.02 Pa, far below the sensor's 0.16 Pa resolution.
	wantValues(t, map[string]float64{"temperature": v["temperature"]}, map[string]float64{"temperature": 25.08}, 1e-9)
	if p := v["pressure"]; p < 1006.5325 || p > 1006.5327 {
		t.Errorf("pressure %.6f hPa, want 1006.5327 (datasheet) within 0.0002", p)
	}
	if p := v["pressure"]; p != 25767233.0/256/100 {
		t.Errorf("pressure %v hPa, want the integer formula's 25767233/256 Pa", p)
	}
	closeHost(t, h)
}

// TestBME280Recorded replays a BME280 recorded by periph's authors
// (periph.io/x/devices/v3/bmxx80 bmx280_test.go,
// TestI2CSenseBME280_success): the Bosch datasheet has no humidity
// example, and its temperature and pressure formulas are the BMP280's,
// checked against the datasheet above.
func TestBME280Recorded(t *testing.T) {
	bus := playback([]i2ctest.IO{
		{Addr: 0x76, W: []byte{0xd0}, R: []byte{0x60}},
		{Addr: 0x76, W: []byte{0x88}, R: []byte{0x10, 0x6e, 0x6c, 0x66, 0x32, 0x0, 0x5d, 0x95, 0xb8, 0xd5, 0xd0, 0xb, 0x77, 0x1e, 0x9d, 0xff, 0xf9, 0xff, 0xac, 0x26, 0xa, 0xd8, 0xbd, 0x10, 0x0, 0x4b}},
		{Addr: 0x76, W: []byte{0xe1}, R: []byte{0x6e, 0x1, 0x0, 0x13, 0x5, 0x0, 0x1e}},
		{Addr: 0x76, W: []byte{0xf4, 0x6c, 0xf2, 0x3, 0xf5, 0xa0, 0xf4, 0x6c}},
		{Addr: 0x76, W: []byte{0xF2}, R: []byte{0x03, 0x00, 0x6c, 0xa0}},
		{Addr: 0x76, W: []byte{0xF4, 0x6d}},
		{Addr: 0x76, W: []byte{0xF3}, R: []byte{0}},
		{Addr: 0x76, W: []byte{0xf7}, R: []byte{0x4a, 0x52, 0xc0, 0x80, 0x96, 0xc0, 0x7a, 0x76}},
		{Addr: 0x76, W: []byte{0xf7}, R: []byte{0x4a, 0x52, 0xc0, 0x80, 0x96, 0xc0, 0x7a, 0x76}},
	}...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	open := prepare(t, h, "bme280", map[string]any{"bus": "/dev/i2c-1", "address": "0x76"})
	v, err := openRead(t, open)
	if err != nil {
		t.Fatal(err)
	}
	// periph's expected values: 23.72 °C, 100942.6953125 Pa, 65.3056 %RH.
	wantValues(t, v, map[string]float64{"temperature": 23.72, "pressure": 1009.426953125, "humidity": 65.3056}, 1e-9)
	closeHost(t, h)
}

// A cheap "BME280" board carrying a BMP280 must not read as a BME280
// without humidity: the error names the driver to use.
func TestBME280FindsBMP280(t *testing.T) {
	bus := playback(bmp280Ops(0x58)[:3]...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	open := prepare(t, h, "bme280", map[string]any{"bus": "/dev/i2c-1", "address": 0x76, "oversampling": 1})
	_, err := openRead(t, open)
	if err == nil || !strings.Contains(err.Error(), "found a BMP280, not a BME280: use driver bmp280") {
		t.Fatalf("err = %v", err)
	}
}

func TestBMP280WrongChipID(t *testing.T) {
	bus := playback(i2ctest.IO{Addr: 0x76, W: []byte{0xD0}, R: []byte{0xFF}})
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	open := prepare(t, h, "bmp280", map[string]any{"bus": "/dev/i2c-1", "address": 0x76})
	if _, err := openRead(t, open); err == nil || !strings.Contains(err.Error(), "unexpected chip id ff") {
		t.Fatalf("err = %v", err)
	}
	closeHost(t, h)
}

// The datasheet's "measurement skipped" raw values (0x80000 temperature
// and pressure, 0x8000 humidity) are errors, never converted; control
// registers at their power-on 0x00 make the read configure the chip again.
func TestBME280SkippedAndReset(t *testing.T) {
	head := []i2ctest.IO{
		{Addr: 0x76, W: []byte{0xd0}, R: []byte{0x60}},
		{Addr: 0x76, W: []byte{0x88}, R: []byte{0x10, 0x6e, 0x6c, 0x66, 0x32, 0x0, 0x5d, 0x95, 0xb8, 0xd5, 0xd0, 0xb, 0x77, 0x1e, 0x9d, 0xff, 0xf9, 0xff, 0xac, 0x26, 0xa, 0xd8, 0xbd, 0x10, 0x0, 0x4b}},
		{Addr: 0x76, W: []byte{0xe1}, R: []byte{0x6e, 0x1, 0x0, 0x13, 0x5, 0x0, 0x1e}},
		{Addr: 0x76, W: []byte{0xf4, 0x6c, 0xf2, 0x3, 0xf5, 0xa0, 0xf4, 0x6c}},
	}
	for _, c := range []struct {
		data []byte
		want string
	}{
		{[]byte{0x4a, 0x52, 0xc0, 0x80, 0x00, 0x00, 0x7a, 0x76}, "temperature"},
		{[]byte{0x80, 0x00, 0x00, 0x80, 0x96, 0xc0, 0x7a, 0x76}, "pressure"},
		{[]byte{0x4a, 0x52, 0xc0, 0x80, 0x96, 0xc0, 0x80, 0x00}, "humidity"},
	} {
		ops := append(append([]i2ctest.IO{}, head...),
			i2ctest.IO{Addr: 0x76, W: []byte{0xF2}, R: []byte{0x03, 0x00, 0x6c, 0xa0}},
			i2ctest.IO{Addr: 0x76, W: []byte{0xF4, 0x6d}},
			i2ctest.IO{Addr: 0x76, W: []byte{0xF3}, R: []byte{0}},
			i2ctest.IO{Addr: 0x76, W: []byte{0xf7}, R: c.data},
			i2ctest.IO{Addr: 0x76, W: []byte{0xf7}, R: c.data},
		)
		h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": playback(ops...)})
		v, err := openRead(t, prepare(t, h, "bme280", map[string]any{"bus": "/dev/i2c-1", "address": 0x76}))
		var se *SkippedError
		if !errors.As(err, &se) || se.Quantity != c.want {
			t.Errorf("%s skipped: %v, %v", c.want, v, err)
		}
		closeHost(t, h)
	}

	// Power-on control registers: configured again (chip id,
	// calibration, settings) before the measurement.
	ops := append(append([]i2ctest.IO{}, head...),
		i2ctest.IO{Addr: 0x76, W: []byte{0xF2}, R: []byte{0x00, 0x00, 0x00, 0x00}})
	ops = append(ops, head...)
	ops = append(ops,
		i2ctest.IO{Addr: 0x76, W: []byte{0xF4, 0x6d}},
		i2ctest.IO{Addr: 0x76, W: []byte{0xF3}, R: []byte{0}},
		i2ctest.IO{Addr: 0x76, W: []byte{0xf7}, R: []byte{0x4a, 0x52, 0xc0, 0x80, 0x96, 0xc0, 0x7a, 0x76}},
		i2ctest.IO{Addr: 0x76, W: []byte{0xf7}, R: []byte{0x4a, 0x52, 0xc0, 0x80, 0x96, 0xc0, 0x7a, 0x76}},
	)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": playback(ops...)})
	v, err := openRead(t, prepare(t, h, "bme280", map[string]any{"bus": "/dev/i2c-1", "address": 0x76}))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, map[string]float64{"temperature": 23.72, "pressure": 1009.426953125, "humidity": 65.3056}, 1e-9)
	closeHost(t, h)
}
