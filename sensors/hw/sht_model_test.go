package hw

import (
	"testing"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
)

// Every response is read after the command's maximum execution time, at
// each precision: 0x6666 is 25 °C.
func TestSHTModelWaits(t *testing.T) {
	for _, c := range []struct {
		driver, key string
		addr        int
		model       func(*chipmodel.Clock) *chipmodel.SHT
		rh          float64
	}{
		// SHT3x: RH = 100 S / 65535; SHT4x: RH = -6 + 125 S / 65535.
		{"sht3x", "repeatability", 0x44, chipmodel.NewSHT3x, 100 * float64(0x8000) / 65535},
		{"sht4x", "precision", 0x44, chipmodel.NewSHT4x, -6 + 125*float64(0x8000)/65535},
	} {
		for _, level := range []string{"high", "medium", "low"} {
			t.Run(c.driver+"/"+level, func(t *testing.T) {
				h, bus, clock := modelHost(t)
				m := c.model(clock)
				bus.Add(uint16(c.addr), m)
				v, err := openRead(t, prepare(t, h, c.driver, map[string]any{"bus": "/dev/i2c-1", "address": c.addr, c.key: level}))
				if err != nil {
					t.Fatal(err)
				}
				wantValues(t, v, sensors.Values{"temperature": -45 + 175*float64(0x6666)/65535, "humidity": c.rh}, 1e-5)
				if n := m.EarlyReads(); n != 0 {
					t.Errorf("%d reads before the execution time", n)
				}
			})
		}
	}
}
