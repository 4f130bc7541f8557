package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kitd-dev/kitd/sensors/serial/serialtest"
)

// Frames from the datasheets (see the driver packages' tests) and faults.
var (
	mhzRequest = []byte{0xFF, 0x01, 0x86, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79}
	mhzExample = []byte{0xFF, 0x86, 0x02, 0x20, 0x00, 0x00, 0x00, 0x00, 0x58} // 544 ppm
	mhzBadSum  = []byte{0xFF, 0x86, 0x02, 0x20, 0x00, 0x00, 0x00, 0x00, 0x59}
	mhzZero    = []byte{0xFF, 0x86, 0, 0, 0, 0, 0, 0, 0x7A}

	pmsPassive = []byte{0x42, 0x4D, 0xE1, 0x00, 0x00, 0x01, 0x70}
	pmsRead    = []byte{0x42, 0x4D, 0xE2, 0x00, 0x00, 0x01, 0x71}
	pmsAck     = []byte{0x42, 0x4D, 0x00, 0x04, 0xE1, 0x00, 0x01, 0x74}
	pmsExample = []byte{ // atmospheric PM1, PM2.5, PM10 = 5, 8, 9
		0x42, 0x4D, 0x00, 0x1C, 0x00, 0x06, 0x00, 0x0A, 0x00, 0x0C, 0x00, 0x05, 0x00, 0x08, 0x00, 0x09,
		0x04, 0x11, 0x01, 0x36, 0x00, 0x34, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x97, 0x00, 0x01, 0xF9}
	pmsZero = append([]byte{0x42, 0x4D, 0x00, 0x1C}, append(make([]byte, 26), 0x00, 0xAB)...)

	sdsSetQuery = []byte{0xAA, 0xB4, 0x02, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0x02, 0xAB}
	sdsQuery    = []byte{0xAA, 0xB4, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0x02, 0xAB}
	sdsMode     = []byte{0xAA, 0xC5, 0x02, 0x01, 0x01, 0x00, 0xA1, 0x60, 0x05, 0xAB}
	sdsExample  = []byte{0xAA, 0xC0, 0xD4, 0x04, 0x3A, 0x0A, 0xA1, 0x60, 0x1D, 0xAB} // 123.6, 261.8
	sdsBadSum   = []byte{0xAA, 0xC0, 0xD4, 0x04, 0x3A, 0x0A, 0xA1, 0x60, 0x1E, 0xAB}
	sdsZero     = []byte{0xAA, 0xC0, 0, 0, 0, 0, 0, 0, 0, 0xAB}
)

func corrupt(f []byte) []byte {
	b := bytes.Clone(f)
	b[len(b)-1]++
	return b
}

// uart plays a sensor on a pty: each request of reqLen bytes is answered
// by answer (nil: no answer).
func uart(t *testing.T, reqLen int, answer func(req []byte) []byte) string {
	t.Helper()
	s := serialtest.New(t)
	s.Serve(t, func(s *serialtest.Sensor) error {
		req, err := s.Read(reqLen)
		if err != nil {
			return err
		}
		a := answer(req)
		if a == nil {
			return fmt.Errorf("unexpected request % X", req)
		}
		return s.Write(a)
	})
	return s.Path
}

func mhz(t *testing.T, reply []byte) string {
	return uart(t, 9, func(req []byte) []byte {
		if bytes.Equal(req, mhzRequest) {
			return reply
		}
		return nil
	})
}

func pms(t *testing.T, reply []byte) string {
	return uart(t, 7, func(req []byte) []byte {
		switch {
		case bytes.Equal(req, pmsPassive):
			return pmsAck
		case bytes.Equal(req, pmsRead):
			return reply
		}
		return nil
	})
}

func sds(t *testing.T, reply []byte) string {
	return uart(t, 19, func(req []byte) []byte {
		switch {
		case bytes.Equal(req, sdsSetQuery):
			return sdsMode
		case bytes.Equal(req, sdsQuery):
			return reply
		}
		return nil
	})
}

func iioTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"iio:device0/name":                      "TI-am335x-adc.0.auto\n",
		"iio:device0/in_voltage0_raw":           "2048\n",
		"iio:device0/in_voltage1_raw":           "4095\n", // at full scale
		"iio:device0/in_voltage2_raw":           "1500\n",
		"iio:device1/name":                      "dht11\n",
		"iio:device1/in_temp_input":             "23400\n",
		"iio:device1/in_humidityrelative_input": "45000\n",
		"iio:device2/name":                      "dht22\n",
		"iio:device2/in_temp_input":             "21\x00\n", // garbage
		"iio:device2/in_humidityrelative_input": "40000\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// kitd sensors read with a fake IIO tree and ptys speaking MH-Z19B,
// PMS5003 and SDS011: the datasheets' frames give their values, garbage
// before a frame is skipped, and every fault frame is rejected with its
// reason.
func TestSensorsReadIIOAndSerial(t *testing.T) {
	iioDir := iioTree(t)
	garbage := []byte{0x00, 0x13, 0x42, 0xAA, 0xFF, 0x0D}
	type row struct {
		name, driver, options string
		extra                 string // more keys of the sensor entry
		want                  string // a value list, or a regexp the error must match
		fails                 bool
	}
	rows := []row{
		{"adc0", "iio", "{ device: TI-am335x-adc.0.auto, channel: voltage0, iio_dir: " + iioDir + " }", "", "voltage=0.90022", false},
		{"soil", "iio", "{ device: TI-am335x-adc.0.auto, channel: voltage2, iio_dir: " + iioDir + ", dry: 3000, wet: 1000 }", "", "moisture=75 voltage=0.659341", false},
		{"dht", "iio", "{ device: dht11, iio_dir: " + iioDir + " }", "", "humidity=45 temperature=23.4", false},
		// Calibration applies to the new drivers as to every other.
		{"dht-cal", "iio", "{ device: dht11, iio_dir: " + iioDir + " }", ", calibrate: { temperature: { offset: -1.2 } }", "humidity=45 temperature=22.2", false},
		{"adc-over", "iio", "{ device: TI-am335x-adc.0.auto, channel: voltage1, iio_dir: " + iioDir + " }", "", `raw 4095 at the end of the ADC's range`, true},
		{"dht-bad", "iio", "{ device: dht22, iio_dir: " + iioDir + " }", "", `in_temp_input: not a number`, true},
		{"dht-gone", "iio", "{ device: dht11, channel: temp, iio_dir: /nonexistent }", "", `no such device "dht11"`, true},

		{"co2", "mhz19", "{ port: " + mhz(t, mhzExample) + ", warmup: 0s }", "", "co2=544", false},
		{"co2-garbage", "mhz19", "{ port: " + mhz(t, append(bytes.Clone(garbage), mhzExample...)) + ", warmup: 0s }", "", "co2=544", false},
		{"co2-badsum", "mhz19", "{ port: " + mhz(t, mhzBadSum) + ", warmup: 0s }", "", `mhz19: checksum 0x59, want 0x58`, true},
		{"co2-zero", "mhz19", "{ port: " + mhz(t, mhzZero) + ", warmup: 0s }", "", `mhz19: all-zero response`, true},
		{"co2-cut", "mhz19", "{ port: " + mhz(t, mhzExample[:5]) + ", warmup: 0s }", "", `truncated frame|no answer`, true},

		{"pm", "pms5003", "{ port: " + pms(t, pmsExample) + " }", "", "pm1=5 pm10=9 pm2_5=8", false},
		{"pm-garbage", "pms5003", "{ port: " + pms(t, append(bytes.Clone(garbage), pmsExample...)) + " }", "", "pm1=5 pm10=9 pm2_5=8", false},
		{"pm-badsum", "pms5003", "{ port: " + pms(t, corrupt(pmsExample)) + " }", "", `pms5003: checksum 0x01FA, want 0x01F9`, true},
		{"pm-spinup", "pms5003", "{ port: " + pms(t, pmsZero) + " }", "", `pms5003: all-zero frame: the fan is still spinning up`, true},
		{"pm-cut", "pms5003", "{ port: " + pms(t, pmsExample[:20]) + " }", "", `truncated frame|no answer`, true},

		{"dust", "sds011", "{ port: " + sds(t, sdsExample) + " }", "", "pm10=261.8 pm2_5=123.6", false},
		{"dust-garbage", "sds011", "{ port: " + sds(t, append(bytes.Clone(garbage), sdsExample...)) + " }", "", "pm10=261.8 pm2_5=123.6", false},
		{"dust-badsum", "sds011", "{ port: " + sds(t, sdsBadSum) + " }", "", `sds011: checksum 0x1E, want 0x1D`, true},
		{"dust-zero", "sds011", "{ port: " + sds(t, sdsZero) + " }", "", `sds011: all-zero data frame`, true},
		{"dust-cut", "sds011", "{ port: " + sds(t, sdsExample[:6]) + " }", "", `truncated frame|no answer`, true},
	}
	var cfg strings.Builder
	cfg.WriteString(validConfig(t))
	for _, r := range rows {
		fmt.Fprintf(&cfg, "  - { name: %s, driver: %s, interval: 10s, timeout: 1s, options: %s%s }\n", r.name, r.driver, r.options, r.extra)
	}
	path := writeConfig(t, cfg.String())

	if r := kitd(t, nil, nil, "config", "check", "-c", path); r.code != 0 {
		t.Fatalf("config check: %+v", r)
	}
	res := kitd(t, nil, nil, "sensors", "read", "-c", path)
	if res.code != 1 || !strings.Contains(res.stderr, fmt.Sprintf("%d of %d sensors failed", 12, len(rows)+1)) {
		t.Errorf("exit %d, stderr %q", res.code, res.stderr)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(res.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	for _, r := range rows {
		l, ok := lines[r.name]
		switch {
		case !ok:
			t.Errorf("%s: no row", r.name)
		case !r.fails && !strings.Contains(l, " "+r.want+" ") || !r.fails && !strings.HasSuffix(strings.TrimSpace(l), " -"):
			t.Errorf("%s: row %q, want values %q and no error", r.name, l, r.want)
		case r.fails && (!regexp.MustCompile(r.want).MatchString(l) || !strings.Contains(l, " - ") && !strings.Contains(l, " -  ")):
			t.Errorf("%s: row %q, want no values and an error matching %q", r.name, l, r.want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", res.stdout)
	}
}

// config check validates the new drivers' options for form, with no
// hardware present, and names the sensor and option.
func TestConfigCheckIIOAndSerialOptions(t *testing.T) {
	for _, c := range []struct{ sensor, want string }{
		{"{ name: a, driver: iio, interval: 10s, options: { device: dht11 } }", ""},
		{"{ name: a, driver: mhz19, interval: 10s, options: { port: /dev/serial0 } }", ""},
		{"{ name: a, driver: pms5003, interval: 10s, options: { port: /dev/ttyAMA0 } }", ""},
		{"{ name: a, driver: sds011, interval: 10s, options: { port: /dev/ttyUSB0 } }", ""},
		{"{ name: a, driver: iio, interval: 10s, options: { channel: voltage0 } }", "sensors[1] (a).options.device: required"},
		{"{ name: a, driver: iio, interval: 10s, options: { device: x, channel: volt-0 } }", "sensors[1] (a).options.channel: \"volt-0\" is not an IIO channel name"},
		{"{ name: a, driver: mhz19, interval: 10s, options: { port: ttyS0 } }", "sensors[1] (a).options.port: \"ttyS0\" is not a serial device path"},
		{"{ name: a, driver: pms5003, interval: 10s }", "sensors[1] (a).options.port: required"},
		{"{ name: a, driver: sds011, interval: 10s, options: { port: /dev/ttyUSB0, baud: 9600 } }", "sensors[1] (a).options.baud: unknown option"},
	} {
		path := writeConfig(t, validConfig(t)+"  - "+c.sensor+"\n")
		r := kitd(t, nil, nil, "config", "check", "-c", path)
		if c.want == "" && r.code != 0 || c.want != "" && (r.code != 2 || !strings.Contains(r.stderr, c.want)) {
			t.Errorf("%s: exit %d, stderr %q; want %q", c.sensor, r.code, r.stderr, c.want)
		}
	}
}

func TestSensorsScanListsIIOAndSerialPorts(t *testing.T) {
	dev := t.TempDir()
	for _, n := range []string{"ttyUSB0", "ttyAMA0", "i2c-1"} {
		os.WriteFile(filepath.Join(dev, n), nil, 0o600)
	}
	os.Symlink("ttyAMA0", filepath.Join(dev, "serial0"))
	iioDir := iioTree(t)
	r := kitd(t, nil, nil, "sensors", "scan", "--w1-dir", t.TempDir(), "--iio-dir", iioDir, "--dev-dir", dev)
	want := "IIO " + iioDir + ": 3 devices\n" +
		"  iio:device0  TI-am335x-adc.0.auto  voltage0 voltage1 voltage2\n" +
		"  iio:device1  dht11  humidityrelative temp\n" +
		"  iio:device2  dht22  humidityrelative temp\n" +
		"Serial " + dev + ": 3 ports\n" +
		"  " + dev + "/serial0 -> ttyAMA0\n  " + dev + "/ttyAMA0\n  " + dev + "/ttyUSB0\n"
	if r.code != 0 || !strings.HasSuffix(r.stdout, want) {
		t.Fatalf("exit %d\n%s\nwant suffix\n%s", r.code, r.stdout, want)
	}
}
