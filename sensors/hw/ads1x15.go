package hw

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ads1x15"
)

// adsChip describes the two ADCs: the ADS1015 is the 12-bit sibling of
// the 16-bit ADS1115, with faster data rates; its conversion register
// holds the 12-bit code left-justified.
type adsChip struct {
	name     string
	bits     int
	rates    []int // samples per second, datasheet "DR" field
	defRate  int
	maxCount int // largest positive code
}

var adsChips = map[string]adsChip{
	"ads1115": {name: "ADS1115", bits: 16, rates: []int{8, 16, 32, 64, 128, 250, 475, 860}, defRate: 128, maxCount: 32767},
	"ads1015": {name: "ADS1015", bits: 12, rates: []int{128, 250, 490, 920, 1600, 2400, 3300}, defRate: 1600, maxCount: 2047},
}

// fullScales are the PGA's full-scale ranges in volts (datasheet Table 3
// of the ADS1115, the same for the ADS1015).
var fullScales = []float64{6.144, 4.096, 2.048, 1.024, 0.512, 0.256}

// adsKind is ads1115 or ads1015 through periph's ads1x15: one
// single-ended channel, reported as voltage, and as moisture % from a
// two-point calibration for capacitive soil probes.
//
// Options: bus, address (0x48..0x4b), mux_address, mux_channel, channel
// (0..3, default 0), full_scale (volts: 6.144, 4.096, 2.048, 1.024,
// 0.512 or 0.256; default 4.096, right for 3.3 V probes), data_rate
// (samples/s; default 128 for the ADS1115, 1600 for the ADS1015), dry and
// wet (the raw counts the probe reads in dry air and in water; both or
// neither), raw (true adds the raw count as value "raw", to find dry and
// wet).
func (h *Host) adsKind(name string) sensors.Kind {
	c := adsChips[name]
	return sensors.Kind{
		Name:    name,
		Timeout: time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			t := i2cTarget(o, c.name, 0x48, 0x49, 0x4a, 0x4b)
			channel := o.Int("channel", 0)
			if channel < 0 || channel > 3 {
				o.Fail("channel", "%d out of range 0..3", channel)
			}
			fs := o.Float("full_scale", 4.096)
			if !slices.Contains(fullScales, fs) {
				o.Fail("full_scale", "%g V is not one of the PGA's ranges (6.144, 4.096, 2.048, 1.024, 0.512, 0.256)", fs)
			}
			rate := o.Int("data_rate", c.defRate)
			if !slices.Contains(c.rates, rate) {
				o.Fail("data_rate", "%d is not one of the %s's rates (%s)", rate, c.name, intList(c.rates))
			}
			m := moistureCal{}
			if o.Has("dry") || o.Has("wet") {
				m.enabled = true
				m.dry = o.Int("dry", 0)
				m.wet = o.Int("wet", 0)
				switch {
				case !o.Has("dry"):
					o.Fail("dry", "required with wet (the probe's raw count in dry air)")
				case !o.Has("wet"):
					o.Fail("wet", "required with dry (the probe's raw count in water)")
				case m.dry == m.wet:
					o.Fail("wet", "equals dry (%d): two different calibration points are needed", m.dry)
				}
				for _, f := range []struct {
					key string
					v   int
				}{{"dry", m.dry}, {"wet", m.wet}} {
					if f.v < -c.maxCount-1 || f.v > c.maxCount {
						o.Fail(f.key, "%d out of the %s's range %d..%d", f.v, c.name, -c.maxCount-1, c.maxCount)
					}
				}
			}
			raw := o.Bool("raw", false)
			open := func(ctx context.Context) (sensors.Driver, error) {
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					// periph's constructor touches nothing; reading the
					// config register proves a chip answers.
					var cfg [2]byte
					if err := g.Tx(t.addr, []byte{0x01}, cfg[:]); err != nil {
						return nil, fmt.Errorf("%s: config register: %w", c.name, err)
					}
					opts := ads1x15.Opts{I2cAddress: t.addr}
					newADC := ads1x15.NewADS1115
					if c.bits == 12 {
						newADC = ads1x15.NewADS1015
					}
					adc, err := newADC(g, &opts)
					if err != nil {
						return nil, err
					}
					pin, err := adc.PinForChannel(ads1x15.Channel0+ads1x15.Channel(channel),
						physic.ElectricPotential(math.Round(fs*1000))*physic.MilliVolt,
						physic.Frequency(rate)*physic.Hertz, ads1x15.BestQuality)
					if err != nil {
						return nil, err
					}
					return &chip{
						read: func(context.Context) (sensors.Values, error) {
							s, err := pin.Read()
							if err != nil {
								return nil, err
							}
							// The ADS1015's code is left-justified in 16 bits.
							count := int(s.Raw) >> (16 - c.bits)
							if count >= c.maxCount || count <= -c.maxCount-1 {
								return nil, fmt.Errorf("%s: input saturated (count %d) at full_scale %g V: raise full_scale", c.name, count, fs)
							}
							v := sensors.Values{"voltage": volts(s.V)}
							if m.enabled {
								v["moisture"] = m.percent(count)
							}
							if raw {
								v["raw"] = float64(count)
							}
							return v, nil
						},
						halt: pin.Halt,
					}, nil
				})
			}
			return open, o.Done()
		},
	}
}

// moistureCal is a two-point calibration of a soil probe: dry reads 0 %,
// wet 100 %, linear between. Either may be the larger count (capacitive
// probes read lower when wet, resistive ones higher). Readings beyond the
// calibration points are clamped to 0..100: a probe drier than it was in
// air, or wetter than in a glass of water, is at the end of its scale.
type moistureCal struct {
	enabled  bool
	dry, wet int
}

func (m moistureCal) percent(count int) float64 {
	p := float64(count-m.dry) / float64(m.wet-m.dry) * 100
	return min(max(p, 0), 100)
}

func intList(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
