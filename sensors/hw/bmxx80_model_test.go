package hw

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
)

// The calibration and raw values of TestBME280Recorded: 23.72 °C,
// 1009.426953125 hPa, 65.3056 %RH.
var (
	bme280Cal88 = []byte{0x10, 0x6e, 0x6c, 0x66, 0x32, 0x0, 0x5d, 0x95, 0xb8, 0xd5, 0xd0, 0xb, 0x77, 0x1e, 0x9d, 0xff, 0xf9, 0xff, 0xac, 0x26, 0xa, 0xd8, 0xbd, 0x10, 0x0, 0x4b}
	bme280CalE1 = []byte{0x6e, 0x1, 0x0, 0x13, 0x5, 0x0, 0x1e}
	bme280Want  = sensors.Values{"temperature": 23.72, "pressure": 1009.426953125, "humidity": 65.3056}
)

func openBMEModel(t *testing.T, name string) (sensors.Driver, *chipmodel.BMx280, context.Context) {
	t.Helper()
	h, bus, clock := modelHost(t)
	m := chipmodel.NewBME280(clock, bme280Cal88, bme280CalE1)
	if name == "bmp280" {
		m = chipmodel.NewBMP280(clock, bmp280Cal)
	}
	m.SetRaw(0x8096c, 0x4a52c, 0x7a76)
	if name == "bmp280" {
		// The BMP280 datasheet's example: 25.08 °C, 1006.53 hPa.
		m.SetRaw(519888, 415148, 0)
	}
	bus.Add(0x76, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	d, err := prepare(t, h, name, map[string]any{"bus": "/dev/i2c-1", "address": 0x76})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, m, ctx
}

// After a brown-out the BME280's ctrl_hum is 0 (humidity skipped): the
// read notices and restores the oversampling settings, so humidity is
// measured again instead of converted from the skipped value.
func TestBME280ModelRestoresSettingsAfterReset(t *testing.T) {
	d, m, ctx := openBMEModel(t, "bme280")
	for i := range 3 {
		v, err := d.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		wantValues(t, v, bme280Want, 1e-9)
		m.Reset()
	}
}

// A chip that resets while it measures leaves the data registers at
// their "measurement skipped" values: an error naming that, never a
// reading; the next read measures again.
func TestBMx280ModelSkippedIsError(t *testing.T) {
	for _, name := range []string{"bme280", "bmp280"} {
		t.Run(name, func(t *testing.T) {
			d, m, ctx := openBMEModel(t, name)
			m.ResetDuringNextMeasurement()
			v, err := d.Read(ctx)
			var se *SkippedError
			if !errors.As(err, &se) {
				t.Fatalf("read after a reset mid-measurement: %v, %v; want a SkippedError", v, err)
			}
			if v, err = d.Read(ctx); err != nil {
				t.Fatalf("next read: %v", err)
			}
			if name == "bme280" {
				wantValues(t, v, bme280Want, 1e-9)
			} else {
				wantValues(t, v, sensors.Values{"temperature": 25.08, "pressure": 1006.53}, 0.01)
			}
		})
	}
}

func openBMP180Model(t *testing.T, oversampling int) (sensors.Driver, *chipmodel.BMP180, context.Context) {
	t.Helper()
	h, bus, clock := modelHost(t)
	m := chipmodel.NewBMP180(clock, bmp180Cal)
	bus.Add(0x77, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	d, err := prepare(t, h, "bmp180", map[string]any{"bus": "/dev/i2c-1", "address": 0x77, "oversampling": oversampling})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, m, ctx
}

// The datasheet's example (section 3.5: UT 27898, UP 23843 at oss 0 are
// 15.0 °C and 69964 Pa) through a chip that takes its conversion times,
// and one 10 % slower: each result is read only once SCO says the
// conversion is done. periph waits a fixed time on the wall clock and
// then reads, which on a slow chip is the previous result (power-on
// 0x8000 for UT: 51.1 °C, a plausible value).
func TestBMP180ModelWaitsForConversion(t *testing.T) {
	for _, slow := range []float64{1, 1.1} {
		d, m, ctx := openBMP180Model(t, 1)
		m.Slow = slow
		m.SetRaw(27898, 23843)
		for i := range 2 {
			v, err := d.Read(ctx)
			if err != nil {
				t.Fatalf("slow %g, read %d: %v", slow, i, err)
			}
			wantValues(t, v, sensors.Values{"temperature": 15.0, "pressure": 699.64}, 1e-9)
		}
	}
}

// Every oversampling waits for its own pressure conversion time (4.5 to
// 25.5 ms): the same pressure as a 16- to 19-bit UP.
func TestBMP180ModelOversampling(t *testing.T) {
	for oss, factor := range []int{1, 2, 4, 8} {
		d, m, ctx := openBMP180Model(t, factor)
		m.Slow = 1.1
		m.SetRaw(27898, 23843<<oss)
		v, err := d.Read(ctx)
		if err != nil {
			t.Fatalf("oversampling %d: %v", factor, err)
		}
		// The compensation's integer steps shift with oss by a few Pa.
		wantValues(t, v, sensors.Values{"temperature": 15.0, "pressure": 699.64}, 0.05)
	}
}

// A chip that never ends a conversion (SCO stays 1) fails the read by
// its deadline; the stale result registers are never converted.
func TestBMP180ModelNeverReady(t *testing.T) {
	d, m, _ := openBMP180Model(t, 1)
	m.Slow = 1e9
	m.SetRaw(27898, 23843)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	v, err := d.Read(ctx)
	if err == nil || !strings.Contains(err.Error(), "SCO") {
		t.Fatalf("read %v, %v from a chip that never finished a conversion; want an error naming SCO", v, err)
	}
}

// A soft reset between reads returns the chip to power-on: the next read
// converts again and reads the datasheet's values.
func TestBMP180ModelAfterReset(t *testing.T) {
	d, m, ctx := openBMP180Model(t, 1)
	m.SetRaw(27898, 23843)
	for i := range 2 {
		v, err := d.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		wantValues(t, v, sensors.Values{"temperature": 15.0, "pressure": 699.64}, 1e-9)
		m.Reset()
	}
}
