package iio

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/sensors"
)

// Kind is the "iio" driver.
//
// Options: device (the device's name file, e.g. TI-am335x-adc.0.auto or
// dht11, or its directory iio:deviceN; required), channel (e.g. voltage0;
// may be left out when the device has one channel per quantity, as a
// dht11 has), iio_dir (default /sys/bus/iio/devices), scale (for raw
// channels whose driver gives no scale: the sysfs unit per count, e.g. mV
// for voltage), dry and wet (the raw counts of a soil probe in dry air
// and in water: adds moisture %, 0..100, as the ads1115's options do),
// raw (true adds the raw count as value "raw", to find dry and wet).
// dry, wet and raw need a channel with a raw file.
func Kind() sensors.Kind { return KindWith(nil) }

// KindWith is Kind with opts' Sleep and ReadFile, for tests; nil means
// the defaults.
func KindWith(base *Opts) sensors.Kind {
	return sensors.Kind{
		Name: "iio",
		// An ADC read is instant; a dht11 measurement takes about 20 ms
		// but fails often, and the retries are 0.5, 1 and 2 s apart:
		// 5 s allows four attempts.
		Timeout: 5 * time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			var opts Opts
			if base != nil {
				opts = *base
			}
			device := o.String("device", "")
			switch {
			case device == "":
				o.Fail("device", "required: the IIO device's name, e.g. TI-am335x-adc.0.auto or dht11 (kitd sensors scan lists them)")
			case strings.ContainsAny(device, "/\n") || device == "." || device == "..":
				o.Fail("device", "%q is not an IIO device name such as TI-am335x-adc.0.auto", device)
			}
			opts.Channel = o.String("channel", "")
			if opts.Channel != "" {
				switch typ := ChannelType(opts.Channel); {
				case !ValidChannel(opts.Channel):
					o.Fail("channel", "%q is not an IIO channel name such as voltage0, temp or humidityrelative", opts.Channel)
				case Types[typ].Name == "":
					o.Fail("channel", "%q: type %q is not one kitd reads (%s)", opts.Channel, typ, strings.Join(TypeNames(), ", "))
				}
			}
			dir := o.String("iio_dir", DefaultDir)
			if !filepath.IsAbs(dir) {
				o.Fail("iio_dir", "%q must be an absolute path", dir)
			}
			if o.Has("scale") {
				opts.Scale = o.Float("scale", 0)
				if opts.Scale <= 0 {
					o.Fail("scale", "must be a positive number (the sysfs unit per count)")
				}
			}
			cal := twoPoint(o, opts.Channel != "")
			raw := o.Bool("raw", false)
			if raw && opts.Channel == "" {
				o.Fail("raw", "needs channel: the raw count is one channel's")
			}
			open := func(ctx context.Context) (sensors.Driver, error) {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				d, err := Open(dir, device, &opts)
				if err != nil {
					return nil, err
				}
				if (cal.enabled || raw) && d.channels[0].raw == "" {
					return nil, fmt.Errorf("iio: %s %s has no raw counts (only a processed value): drop dry, wet and raw", d.Name, opts.Channel)
				}
				return &driver{d: d, cal: cal, raw: raw}, nil
			}
			return open, o.Done()
		},
	}
}

// moisture is a two-point calibration of a soil probe on an ADC channel,
// the same as the ads1115's: dry reads 0 %, wet 100 %, linear between,
// clamped to 0..100 (a probe drier than in air, or wetter than in water,
// is at the end of its scale).
type moisture struct {
	enabled  bool
	dry, wet int64
}

func twoPoint(o *sensors.Options, haveChannel bool) moisture {
	if !o.Has("dry") && !o.Has("wet") {
		return moisture{}
	}
	m := moisture{enabled: true, dry: int64(o.Int("dry", 0)), wet: int64(o.Int("wet", 0))}
	switch {
	case !haveChannel:
		o.Fail("dry", "needs channel: the calibration is one channel's raw counts")
	case !o.Has("dry"):
		o.Fail("dry", "required with wet (the probe's raw count in dry air)")
	case !o.Has("wet"):
		o.Fail("wet", "required with dry (the probe's raw count in water)")
	case m.dry == m.wet:
		o.Fail("wet", "equals dry (%d): two different calibration points are needed", m.dry)
	}
	return m
}

func (m moisture) percent(raw int64) float64 {
	p := float64(raw-m.dry) / float64(m.wet-m.dry) * 100
	return min(max(p, 0), 100)
}

type driver struct {
	d   *Dev
	cal moisture
	raw bool
}

func (r *driver) Read(ctx context.Context) (sensors.Values, error) {
	s, err := r.d.Read(ctx)
	if err != nil {
		return nil, err
	}
	v := sensors.Values(s.Values)
	if r.cal.enabled {
		v["moisture"] = r.cal.percent(s.Raw)
	}
	if r.raw {
		v["raw"] = float64(s.Raw)
	}
	return v, nil
}

func (r *driver) Close() error { return nil }
