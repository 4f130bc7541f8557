package hw

import (
	"os"
	"strings"
	"testing"

	"github.com/kitd-dev/kitd/sensors"
	"go.yaml.in/yaml/v3"
)

func registry(t *testing.T, h *Host) *sensors.Registry {
	t.Helper()
	reg, err := sensors.NewRegistry(h.Kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// Every driver the issue names is registered, under that name.
func TestKindsNames(t *testing.T) {
	got := registry(t, NewHost(nil)).Names()
	want := "ads1015 ads1115 aht20 bh1750 bme280 bmp180 bmp280 ds18b20 ina219 scd4x sht3x sht4x"
	if strings.Join(got, " ") != want {
		t.Fatalf("kinds %v, want %s", got, want)
	}
	for _, k := range NewHost(nil).Kinds() {
		if k.Timeout <= 0 {
			t.Errorf("%s: no default timeout", k.Name)
		}
	}
}

// A config with one of every driver validates without hardware, and
// validating touches no bus.
func TestAllDriversConfig(t *testing.T) {
	b, err := os.ReadFile("testdata/all.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sensors []sensors.Config `yaml:"sensors"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	h := NewHost(nil)
	h.OpenBus = nil // any attempt to open a bus would panic
	reg := registry(t, h)
	if err := sensors.ValidateConfigs(reg, doc.Sensors); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range doc.Sensors {
		seen[c.Driver] = true
	}
	for _, n := range reg.Names() {
		if !seen[n] {
			t.Errorf("testdata/all.yaml has no %s sensor", n)
		}
	}
}

// Bad options are rejected, each error naming the sensor and the field.
func TestBadOptions(t *testing.T) {
	reg := registry(t, NewHost(nil))
	for _, c := range []struct {
		driver string
		opts   map[string]any
		want   string
	}{
		{"bme280", map[string]any{"bus": "/dev/i2c-1", "address": 0x80}, "options.address: 0x80 out of range 0x03..0x77"},
		{"bme280", map[string]any{"bus": "/dev/i2c-1", "address": 0x48}, "options.address: 0x48 is not an address of the BME280 (0x76, 0x77)"},
		{"bme280", map[string]any{"bus": "i2c-1", "address": 0x76}, `options.bus: "i2c-1" is not an I2C bus name of the form /dev/i2c-N`},
		{"bme280", map[string]any{"address": 0x76}, "options.bus: required"},
		{"bme280", map[string]any{"bus": "/dev/i2c-1"}, "options.address: required"},
		{"bme280", map[string]any{"bus": "/dev/i2c-1", "address": 0x76, "oversample": 4}, "options.oversample: unknown option"},
		{"bme280", map[string]any{"bus": "/dev/i2c-1", "address": 0x76, "oversampling": 3}, "options.oversampling: 3 is not 1, 2, 4, 8 or 16"},
		{"bmp180", map[string]any{"bus": "/dev/i2c-1", "address": 0x76}, "options.address: 0x76 is not an address of the BMP180 (0x77)"},
		{"ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "dry": 20000, "wet": 20000}, "options.wet: equals dry (20000)"},
		{"ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "dry": 20000}, "options.wet: required with dry"},
		{"ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "channel": 4}, "options.channel: 4 out of range 0..3"},
		{"ads1115", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "full_scale": 5}, "options.full_scale: 5 V is not one of the PGA's ranges"},
		{"ads1015", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "dry": 3000, "wet": 100}, "options.dry: 3000 out of the ADS1015's range -2048..2047"},
		{"ads1015", map[string]any{"bus": "/dev/i2c-1", "address": 0x48, "data_rate": 128000}, "options.data_rate: 128000 is not one of the ADS1015's rates"},
		{"sht3x", map[string]any{"bus": "/dev/i2c-1", "address": 0x44, "repeatability": "best"}, `options.repeatability: "best" is not high, medium or low`},
		{"sht4x", map[string]any{"bus": "/dev/i2c-1", "address": 0x47}, "options.address: 0x47 is not an address of the SHT4x (0x44, 0x45, 0x46)"},
		{"ina219", map[string]any{"bus": "/dev/i2c-1", "address": 0x40, "shunt_ohms": 0.001, "max_current": 1}, "options.max_current: 1 A × shunt_ohms 0.001 Ω"},
		{"ina219", map[string]any{"bus": "/dev/i2c-1", "address": 0x40, "shunt_ohms": -1}, "options.shunt_ohms: -1 out of range"},
		{"ds18b20", map[string]any{}, "options.id: required"},
		{"ds18b20", map[string]any{"id": "29-0316a2795aff"}, `options.id: "29-0316a2795aff" is not a 1-Wire thermometer id`},
		{"ds18b20", map[string]any{"id": probeID, "resolution": 13}, "options.resolution: 13 out of range 9..12"},
		{"ds18b20", map[string]any{"id": probeID, "w1_dir": "sys/bus"}, `options.w1_dir: "sys/bus" must be an absolute path`},
		{"ds18b20", map[string]any{"id": probeID, "bus": "/dev/i2c-1", "address": 0x18, "w1_dir": "/sys/bus/w1/devices"}, "options.w1_dir: not with bus"},
		{"ds18b20", map[string]any{"id": probeID, "bus": "/dev/i2c-1", "address": 0x1a}, "options.address: 0x1a is not an address of the DS2482 (0x18, 0x19)"},
		{"ds18b20", map[string]any{"id": "10-0316a2795aff", "resolution": 9}, "options.resolution: the DS18S20 (family 10) has a fixed resolution"},
		{"aht20", map[string]any{"bus": "/dev/i2c-1", "address": 0x38, "mux_channel": 8}, "options.mux_channel: 8 out of range 0..7"},
		{"aht20", map[string]any{"bus": "/dev/i2c-1", "address": 0x38, "mux_address": 0x71}, "options.mux_channel: required with mux_address"},
		{"aht20", map[string]any{"bus": "/dev/i2c-1", "address": 0x38, "mux_address": 0x60, "mux_channel": 1}, "options.mux_address: 0x60 is not a PCA9548 address (0x70..0x77)"},
		{"bmp280", map[string]any{"bus": "/dev/i2c-1", "address": 0x77, "mux_address": 0x77, "mux_channel": 1}, "options.address: 0x77 is the multiplexer's own address"},
	} {
		cfg := []sensors.Config{{Name: "s1", Driver: c.driver, Interval: 10e9, Options: c.opts}}
		err := sensors.ValidateConfigs(reg, cfg)
		if err == nil || !strings.Contains(err.Error(), "sensors[0] (s1)."+c.want) {
			t.Errorf("%s %v: err = %v\nwant it to contain %q", c.driver, c.opts, err, c.want)
		}
	}
}
