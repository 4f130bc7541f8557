package hw

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
)

func TestConfigConflicts(t *testing.T) {
	h := NewHost(nil)
	reg, err := sensors.NewRegistry(h.Kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	bus := func(kv ...any) map[string]any {
		m := map[string]any{"bus": "/dev/i2c-1"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	type s struct {
		driver string
		opts   map[string]any
	}
	for _, c := range []struct {
		what    string
		sensors []s
		want    string // "" when the config is fine
	}{
		{"same address, two chips", []s{{"sht3x", bus("address", 0x44)}, {"sht4x", bus("address", 0x44)}}, "both drive the chip at /dev/i2c-1 0x44"},
		{"same address, other bus", []s{{"sht3x", bus("address", 0x44)}, {"sht4x", map[string]any{"bus": "/dev/i2c-2", "address": 0x44}}}, ""},
		{"ads1115 channels of one chip", []s{{"ads1115", bus("address", 0x48, "channel", 0)}, {"ads1115", bus("address", 0x48, "channel", 1)}}, ""},
		{"ads1115 one channel twice", []s{{"ads1115", bus("address", 0x48, "channel", 1)}, {"ads1115", bus("address", 0x48, "channel", 1)}}, "both drive the chip"},
		{"ads1115 and ads1015 at one address", []s{{"ads1115", bus("address", 0x48, "channel", 0)}, {"ads1015", bus("address", 0x48, "channel", 1)}}, "both drive the chip"},
		{"main bus and behind a mux", []s{{"bme280", bus("address", 0x76)}, {"bme280", bus("address", 0x76, "mux_address", 0x70, "mux_channel", 2)}}, "0x76 is used on the main bus /dev/i2c-1 and behind pca9548 0x70 channel 2"},
		{"one mux, two channels", []s{{"bme280", bus("address", 0x76, "mux_channel", 1)}, {"bme280", bus("address", 0x76, "mux_channel", 2)}}, ""},
		{"one mux, one channel", []s{{"bme280", bus("address", 0x76, "mux_channel", 1)}, {"bmp280", bus("address", 0x76, "mux_channel", 1)}}, "both drive the chip at /dev/i2c-1 0x76 via pca9548 0x70 channel 1"},
		{"two muxes", []s{{"sht3x", bus("address", 0x44, "mux_address", 0x70, "mux_channel", 0)}, {"sht3x", bus("address", 0x44, "mux_address", 0x71, "mux_channel", 3)}}, "behind pca9548 0x71 and behind pca9548 0x70"},
		{"two muxes, other addresses", []s{{"sht3x", bus("address", 0x44, "mux_address", 0x70, "mux_channel", 0)}, {"sht3x", bus("address", 0x45, "mux_address", 0x71, "mux_channel", 0)}}, ""},
		{"chip at a mux's address", []s{{"sht3x", bus("address", 0x44, "mux_address", 0x76, "mux_channel", 0)}, {"bme280", bus("address", 0x76)}}, "0x76 is the address of the pca9548"},
		{"ds18b20s behind one DS2482", []s{{"ds18b20", bus("address", 0x18, "id", "28-0316a2795aff")}, {"ds18b20", bus("address", 0x18, "id", "28-0316a2795b00")}}, ""},
		{"one ds18b20 twice", []s{{"ds18b20", bus("address", 0x18, "id", "28-0316a2795aff")}, {"ds18b20", bus("address", 0x18, "id", "28-0316a2795aff")}}, "both drive the chip"},
		{"DS2482 and another chip", []s{{"ds18b20", bus("address", 0x18, "id", "28-0316a2795aff")}, {"ads1115", bus("address", 0x48)}}, ""},
	} {
		t.Run(c.what, func(t *testing.T) {
			var cfgs []sensors.Config
			for i, x := range c.sensors {
				cfgs = append(cfgs, sensors.Config{Name: fmt.Sprintf("s%d", i), Driver: x.driver, Interval: time.Minute, Options: x.opts})
			}
			err := sensors.ValidateConfigs(reg, cfgs)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "":
			case err == nil:
				t.Fatalf("accepted; want %q", c.want)
			case !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "sensors[1] (s1).options: conflicts with sensors[0] (s0)"):
				t.Fatalf("error %q; want both sensors named and %q", err, c.want)
			}
		})
	}
}
