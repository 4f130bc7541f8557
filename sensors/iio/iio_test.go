package iio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
)

// tree writes a fake /sys/bus/iio/devices: device dir -> file -> content.
func tree(t *testing.T, devs map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for dev, files := range devs {
		for name, body := range files {
			p := filepath.Join(dir, dev, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// beagle is a BeagleBone Black's ADC as ti_am335x_adc shows it: raw
// counts only, AIN0..AIN6, no scale.
func beagle(raw0 string) map[string]string {
	m := map[string]string{"name": "TI-am335x-adc.0.auto\n", "in_voltage0_raw": raw0}
	for i := 1; i <= 6; i++ {
		m[fmt.Sprintf("in_voltage%d_raw", i)] = "100\n"
	}
	return m
}

var dht11 = map[string]string{
	"name":                       "dht11\n",
	"in_temp_input":              "23400\n",
	"in_humidityrelative_input":  "45000\n",
	"uevent":                     "OF_NAME=humidity_sensor\n",
	"power/autosuspend_delay_ms": "",
}

func read(t *testing.T, dir, device string, opts *Opts) (Sample, error) {
	t.Helper()
	d, err := Open(dir, device, opts)
	if err != nil {
		return Sample{}, err
	}
	return d.Read(context.Background())
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestBeagleBoneADC(t *testing.T) {
	dir := tree(t, map[string]map[string]string{"iio:device0": beagle("2048\n")})
	s, err := read(t, dir, "TI-am335x-adc.0.auto", &Opts{Channel: "voltage0"})
	// 12 bits over the 1.8 V reference: 2048 counts are 0.9002 V.
	if err != nil || len(s.Values) != 1 || !near(s.Values["voltage"], 2048*1.8/4095) || s.Raw != 2048 || !s.HasRaw {
		t.Fatalf("%+v, %v", s, err)
	}
	// Every AIN is a voltage channel: without channel it is ambiguous.
	if _, err := read(t, dir, "TI-am335x-adc.0.auto", nil); err == nil || !strings.Contains(err.Error(), "7 voltage channels") {
		t.Fatalf("no channel: %v", err)
	}
	if _, err := read(t, dir, "TI-am335x-adc.0.auto", &Opts{Channel: "voltage7"}); err == nil || !strings.Contains(err.Error(), "has no channel voltage7") {
		t.Fatalf("missing channel: %v", err)
	}
}

func TestADCAtFullScaleIsAnError(t *testing.T) {
	dir := tree(t, map[string]map[string]string{
		"iio:device0": beagle("4095\n"),
		// A driver that says its sample format: 10 bits, unsigned.
		"iio:device1": {"name": "mcp3008\n", "in_voltage0_raw": "1023\n", "in_voltage_scale": "3.222656250\n", "scan_elements/in_voltage0_type": "be:u10/16>>0\n"},
	})
	for _, dev := range []string{"TI-am335x-adc.0.auto", "mcp3008"} {
		s, err := read(t, dir, dev, &Opts{Channel: "voltage0"})
		if err == nil || !strings.Contains(err.Error(), "full scale") || s.Values != nil {
			t.Errorf("%s: %+v, %v", dev, s, err)
		}
	}
}

// (raw + offset) * scale in mV, with the scale shared by the type and an
// offset of the channel's own.
func TestRawScaleOffset(t *testing.T) {
	dir := tree(t, map[string]map[string]string{"iio:device3": {
		"name": "ads1015\n", "in_voltage0_raw": "1000\n", "in_voltage_scale": "3\n", "in_voltage0_offset": "-10\n",
		"in_voltage1_raw": "500\n", "in_voltage1_scale": "0.125\n",
	}})
	s, err := read(t, dir, "ads1015", &Opts{Channel: "voltage0"})
	if err != nil || !near(s.Values["voltage"], 2.97) {
		t.Fatalf("voltage0: %+v, %v", s, err)
	}
	s, err = read(t, dir, "iio:device3", &Opts{Channel: "voltage1"})
	if err != nil || !near(s.Values["voltage"], 0.0625) {
		t.Fatalf("voltage1 by directory: %+v, %v", s, err)
	}
}

func TestRawWithoutScale(t *testing.T) {
	dir := tree(t, map[string]map[string]string{"iio:device0": {"name": "someadc\n", "in_voltage0_raw": "512\n"}})
	if _, err := read(t, dir, "someadc", &Opts{Channel: "voltage0"}); err == nil || !strings.Contains(err.Error(), "set options.scale (mV per count)") {
		t.Fatalf("no scale: %v", err)
	}
	s, err := read(t, dir, "someadc", &Opts{Channel: "voltage0", Scale: 2})
	if err != nil || !near(s.Values["voltage"], 1.024) {
		t.Fatalf("scale option: %+v, %v", s, err)
	}
}

func TestDHT11(t *testing.T) {
	dir := tree(t, map[string]map[string]string{"iio:device1": dht11})
	s, err := read(t, dir, "dht11", nil)
	if err != nil || len(s.Values) != 2 || s.Values["temperature"] != 23.4 || s.Values["humidity"] != 45 || s.HasRaw {
		t.Fatalf("%+v, %v", s, err)
	}
	s, err = read(t, dir, "dht11", &Opts{Channel: "humidityrelative"})
	if err != nil || len(s.Values) != 1 || s.Values["humidity"] != 45 {
		t.Fatalf("one channel: %+v, %v", s, err)
	}
}

// failing returns a ReadFile that fails the first n reads of files
// ending in suffix with errno, and a count of reads.
func failing(n int, suffix string, errno error) (func(string) ([]byte, error), *int) {
	calls := 0
	return func(name string) ([]byte, error) {
		if strings.HasSuffix(name, suffix) {
			calls++
			if calls <= n {
				return nil, &os.PathError{Op: "read", Path: name, Err: errno}
			}
		}
		return os.ReadFile(name)
	}, &calls
}

// The dht11 driver fails a share of its measurements with EIO or
// ETIMEDOUT: they are retried after 0.5 s, 1 s, 2 s, 2 s...
func TestDHT11RetriesTransientFailures(t *testing.T) {
	dir := tree(t, map[string]map[string]string{"iio:device1": dht11})
	for _, errno := range []error{syscall.EIO, syscall.ETIMEDOUT, syscall.EAGAIN} {
		var waits []time.Duration
		rf, _ := failing(4, "humidityrelative_input", errno)
		s, err := read(t, dir, "dht11", &Opts{ReadFile: rf, Sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			return nil
		}})
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}
		if err != nil || s.Values["humidity"] != 45 || s.Values["temperature"] != 23.4 || fmt.Sprint(waits) != fmt.Sprint(want) {
			t.Fatalf("%v: %+v, %v, waits %v", errno, s, err, waits)
		}
	}
}

// Out of time: the last failure is the error, and no value is returned,
// not even the channel that did read.
func TestDHT11GivesUpAtTheDeadline(t *testing.T) {
	dir := tree(t, map[string]map[string]string{"iio:device1": dht11})
	rf, calls := failing(1000, "humidityrelative_input", syscall.ETIMEDOUT)
	ctx, cancel := context.WithCancel(context.Background())
	sleeps := 0
	d, err := Open(dir, "dht11", &Opts{ReadFile: rf, Sleep: func(ctx context.Context, _ time.Duration) error {
		if sleeps++; sleeps == 3 {
			cancel()
		}
		return ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Read(ctx)
	if !errors.Is(err, syscall.ETIMEDOUT) || !errors.Is(err, context.Canceled) || s.Values != nil || *calls != 3 {
		t.Fatalf("%+v, %v after %d reads", s, err, *calls)
	}
}

func TestFaultValuesAreNotRetried(t *testing.T) {
	for _, c := range []struct {
		name, file, body string
		want             string
	}{
		{"garbage", "in_temp_input", "abc\n", "not a number"},
		{"truncated (empty)", "in_temp_input", "", "not a number"},
		{"humidity over 100", "in_humidityrelative_input", "150000\n", "outside 0..100"},
		{"negative humidity", "in_humidityrelative_input", "-1000\n", "outside 0..100"},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range dht11 {
				files[k] = v
			}
			files[c.file] = c.body
			dir := tree(t, map[string]map[string]string{"iio:device1": files})
			s, err := read(t, dir, "dht11", &Opts{Sleep: func(context.Context, time.Duration) error {
				t.Fatal("retried")
				return nil
			}})
			if err == nil || !strings.Contains(err.Error(), c.want) || s.Values != nil {
				t.Fatalf("%+v, %v", s, err)
			}
		})
	}
	// A device that went away mid-run is an error at once too.
	dir := tree(t, map[string]map[string]string{"iio:device1": dht11})
	d, err := Open(dir, "dht11", nil)
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "iio:device1"))
	if _, err := d.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("removed: %v", err)
	}
}

func TestFind(t *testing.T) {
	dir := tree(t, map[string]map[string]string{
		"iio:device0":  dht11,
		"iio:device10": dht11,
		"iio:device2":  beagle("1\n"),
	})
	if _, err := Find(dir, "dht11"); err == nil || !strings.Contains(err.Error(), "iio:device0, iio:device10") {
		t.Errorf("ambiguous: %v", err)
	}
	if d, err := Find(dir, "iio:device10"); err != nil || d.Name != "dht11" {
		t.Errorf("by dir: %+v, %v", d, err)
	}
	_, err := Find(dir, "bme280")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "TI-am335x-adc.0.auto (iio:device2)") {
		t.Errorf("missing: %v", err)
	}
	if _, err := Find(filepath.Join(dir, "none"), "dht11"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "present: none") {
		t.Errorf("no iio dir: %v", err)
	}
}

func TestListAndWrite(t *testing.T) {
	dir := tree(t, map[string]map[string]string{
		"iio:device10": dht11,
		"iio:device2":  beagle("1\n"),
		"trigger0":     {"name": "sysfstrig0\n"},
	})
	devs, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteList(&b, dir, devs, nil)
	want := "IIO " + dir + ": 2 devices\n" +
		"  iio:device2  TI-am335x-adc.0.auto  voltage0 voltage1 voltage2 voltage3 voltage4 voltage5 voltage6\n" +
		"  iio:device10  dht11  humidityrelative temp\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	devs, err = List(filepath.Join(dir, "none"))
	b.Reset()
	WriteList(&b, "/sys/bus/iio/devices", devs, err)
	if err != nil || !strings.Contains(b.String(), "no IIO devices") {
		t.Fatalf("empty: %q, %v", b.String(), err)
	}
}

func prepare(opts map[string]any) (sensors.Opener, error) {
	return Kind().Prepare("s", sensors.NewOptions(opts))
}

func TestKindOptions(t *testing.T) {
	for _, c := range []struct {
		opts map[string]any
		want string
	}{
		{nil, "device: required"},
		{map[string]any{"device": "../x"}, "device: \"../x\" is not"},
		{map[string]any{"device": "dht11", "channel": "voltage 0"}, "channel: \"voltage 0\" is not an IIO channel name"},
		{map[string]any{"device": "dht11", "channel": "accel_x"}, "channel: \"accel_x\": type \"accel\" is not one kitd reads"},
		{map[string]any{"device": "dht11", "iio_dir": "sys/bus"}, "iio_dir: \"sys/bus\" must be an absolute path"},
		{map[string]any{"device": "adc", "dry": 3000, "wet": 1000}, "dry: needs channel"},
		{map[string]any{"device": "adc", "channel": "voltage0", "dry": 3000}, "wet: required with dry"},
		{map[string]any{"device": "adc", "channel": "voltage0", "dry": 3000, "wet": 3000}, "wet: equals dry"},
		{map[string]any{"device": "adc", "raw": true}, "raw: needs channel"},
		{map[string]any{"device": "adc", "channel": "voltage0", "scale": -1}, "scale: must be a positive number"},
		{map[string]any{"device": "adc", "address": 0x48}, "address: unknown option"},
	} {
		if _, err := prepare(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.opts, err, c.want)
		}
	}
	// Form only: no such device on this machine is fine.
	for _, o := range []map[string]any{
		{"device": "TI-am335x-adc.0.auto", "channel": "voltage0", "dry": 3000, "wet": 1200, "raw": true},
		{"device": "dht11"},
		{"device": "iio:device1", "channel": "temp_ambient", "iio_dir": "/tmp/iio"},
	} {
		if _, err := prepare(o); err != nil {
			t.Errorf("%v: %v", o, err)
		}
	}
}

// A soil probe on AIN1 with the same two-point calibration as the ads1115.
func TestKindMoisture(t *testing.T) {
	dev := beagle("1\n")
	dev["in_voltage1_raw"] = "1500\n"
	dir := tree(t, map[string]map[string]string{"iio:device0": dev, "iio:device1": dht11})
	open, err := prepare(map[string]any{"device": "TI-am335x-adc.0.auto", "channel": "voltage1", "iio_dir": dir, "dry": 3000, "wet": 1000, "raw": true})
	if err != nil {
		t.Fatal(err)
	}
	drv, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v, err := drv.Read(context.Background())
	if err != nil || len(v) != 3 || v["moisture"] != 75 || v["raw"] != 1500 || !near(v["voltage"], 1500*1.8/4095) {
		t.Fatalf("%v, %v", v, err)
	}
	// dht11 has processed values only: no raw count to calibrate.
	open, err = prepare(map[string]any{"device": "dht11", "channel": "humidityrelative", "iio_dir": dir, "raw": true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(context.Background()); err == nil || !strings.Contains(err.Error(), "no raw counts") {
		t.Fatalf("raw on dht11: %v", err)
	}
}

func TestMoistureClamps(t *testing.T) {
	m := moisture{enabled: true, dry: 3000, wet: 1000}
	for raw, want := range map[int64]float64{3000: 0, 1000: 100, 2000: 50, 3500: 0, 500: 100} {
		if got := m.percent(raw); got != want {
			t.Errorf("%d: %v, want %v", raw, got, want)
		}
	}
}
