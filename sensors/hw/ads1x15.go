package hw

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/ads1x15"
)

// adsChips maps the driver names to the variants.
var adsChips = map[string]ads1x15.Chip{"ads1115": ads1x15.ADS1115, "ads1015": ads1x15.ADS1015}

// adsKind is ads1115 or ads1015 through package ads1x15: one
// single-ended channel, reported as voltage, and as moisture % from a
// two-point calibration for capacitive soil probes. Sensors on channels
// of one chip (same bus, mux channel and address) share it: each read
// holds the chip from the start of its conversion to the read of its
// result, in kitd run and in kitd sensors read alike.
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
	maxCount := 1<<(c.Bits()-1) - 1
	defRate := map[ads1x15.Chip]int{ads1x15.ADS1115: 128, ads1x15.ADS1015: 1600}[c]
	return sensors.Kind{
		Name:    name,
		Timeout: time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			channel := o.Int("channel", 0)
			t := sharedTarget(o, c.String(), fmt.Sprintf("channel %d", channel), 0x48, 0x49, 0x4a, 0x4b)
			if channel < 0 || channel > 3 {
				o.Fail("channel", "%d out of range 0..3", channel)
			}
			fs := o.Float("full_scale", 4.096)
			if !slices.Contains(ads1x15.FullScales, fs) {
				o.Fail("full_scale", "%g V is not one of the PGA's ranges (6.144, 4.096, 2.048, 1.024, 0.512, 0.256)", fs)
			}
			rate := o.Int("data_rate", defRate)
			if !slices.Contains(c.Rates(), rate) {
				o.Fail("data_rate", "%d is not one of the %s's rates (%s)", rate, c, intList(c.Rates()))
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
					if f.v < -maxCount-1 || f.v > maxCount {
						o.Fail(f.key, "%d out of the %s's range %d..%d", f.v, c, -maxCount-1, maxCount)
					}
				}
			}
			raw := o.Bool("raw", false)
			open := func(ctx context.Context) (sensors.Driver, error) {
				lock := h.lockChip(t)
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					var adc *ads1x15.Dev
					err := lock.hold(ctx, func() (err error) {
						adc, err = ads1x15.NewI2C(g, t.addr, c, &ads1x15.Opts{Channel: channel, FullScale: fs, DataRate: rate, Sleep: h.sleep})
						return err
					})
					if err != nil {
						return nil, err
					}
					return &chip{
						read: func(ctx context.Context) (sensors.Values, error) {
							var s ads1x15.Sample
							err := lock.hold(ctx, func() (err error) {
								s, err = adc.Read(ctx)
								return err
							})
							if err != nil {
								return nil, err
							}
							if s.Saturated(c) {
								return nil, fmt.Errorf("%s: input saturated (count %d) at full_scale %g V: raise full_scale", c, s.Raw, fs)
							}
							v := sensors.Values{"voltage": s.Volts}
							if m.enabled {
								v["moisture"] = m.percent(s.Raw)
							}
							if raw {
								v["raw"] = float64(s.Raw)
							}
							return v, nil
						},
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
