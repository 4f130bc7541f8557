package iio

import (
	"context"
	"errors"
	"fmt"
	"github.com/kitd-dev/kitd/internal/wait"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Opts are a device's settings.
type Opts struct {
	// Channel selects one channel (voltage0); "" reads every channel the
	// device has, which must then be one per quantity (dht11: temp and
	// humidityrelative).
	Channel string
	// Scale is the scale of a raw channel whose driver gives none, in
	// the type's sysfs unit per count (mV for voltage); 0 means the
	// kernel's, or the known default of the device.
	Scale float64
	// Sleep waits between retries of a failed read; nil means a timer
	// bounded by the context. Tests make it return at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// ReadFile reads a sysfs file; nil means os.ReadFile. Tests use it to
	// fail reads as the kernel does (EIO, ETIMEDOUT).
	ReadFile func(name string) ([]byte, error)
}

// DefaultOpts are used when Open is given nil.
var DefaultOpts = Opts{}

// knownADCs give what the kernel does not say about some ADCs: the
// ti_am335x_adc driver exposes raw counts without a scale or scan type.
var knownADCs = []struct {
	name  *regexp.Regexp
	scale float64 // mV per count
	bits  int
}{
	{regexp.MustCompile(`^TI-am335x-adc`), 1800.0 / 4095, 12},
}

// Retry waits after a failed read: 0.5 s, 1 s, then 2 s apart (a DHT22
// needs 2 s between measurements).
var retryWaits = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}

// channel is one channel's files and how to convert them.
type channel struct {
	name     string
	quantity Quantity
	input    string // path of _input, "" when none
	raw      string // path of _raw, "" when none
	scale    []string
	offset   []string
	defScale float64 // when no scale file
	maxRaw   int64   // largest raw count; 0 when unknown
	minRaw   int64
}

// Dev is an opened IIO device.
type Dev struct {
	Device
	path     string
	channels []channel
	opts     Opts
}

// Sample is one pass's values by quantity, and the raw count of a
// single raw channel (for two-point calibrations).
type Sample struct {
	Values map[string]float64
	Raw    int64
	HasRaw bool
}

// Open finds the device named name in dir and its channels.
func Open(dir, name string, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	dev, err := Find(dir, name)
	if err != nil {
		return nil, err
	}
	d := &Dev{Device: dev, path: filepath.Join(dir, dev.Dir), opts: *opts}
	if d.opts.Sleep == nil {
		d.opts.Sleep = wait.Sleep
	}
	if d.opts.ReadFile == nil {
		d.opts.ReadFile = os.ReadFile
	}
	var names []string
	if opts.Channel != "" {
		if !contains(dev.Channels, opts.Channel) {
			return nil, fmt.Errorf("iio: %s (%s) has no channel %s (it has: %s)", dev.Name, dev.Dir, opts.Channel, strings.Join(dev.Channels, ", "))
		}
		names = []string{opts.Channel}
	} else {
		byQuantity := map[string][]string{}
		for _, ch := range dev.Channels {
			if q, ok := Types[ChannelType(ch)]; ok {
				byQuantity[q.Name] = append(byQuantity[q.Name], ch)
				names = append(names, ch)
			}
		}
		for q, chs := range byQuantity {
			if len(chs) > 1 {
				return nil, fmt.Errorf("iio: %s (%s) has %d %s channels (%s): set channel to one of them", dev.Name, dev.Dir, len(chs), q, strings.Join(chs, ", "))
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("iio: %s (%s) has no channel of a type kitd reads (%s); it has: %s", dev.Name, dev.Dir, strings.Join(TypeNames(), ", "), strings.Join(dev.Channels, ", "))
		}
	}
	for _, n := range names {
		c, err := d.channel(n)
		if err != nil {
			return nil, err
		}
		d.channels = append(d.channels, c)
	}
	return d, nil
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

func (d *Dev) channel(name string) (channel, error) {
	m := channelName.FindStringSubmatch(name)
	typ := m[1]
	q, ok := Types[typ]
	if !ok {
		return channel{}, fmt.Errorf("iio: %s: channel type %q is not one kitd reads (%s)", name, typ, strings.Join(TypeNames(), ", "))
	}
	c := channel{name: name, quantity: q}
	file := func(info string) string { return filepath.Join(d.path, "in_"+name+"_"+info) }
	if exists(file("input")) {
		c.input = file("input")
	}
	if exists(file("raw")) {
		c.raw = file("raw")
	}
	// Shared attributes: in_voltage_scale for every voltage channel.
	shared := func(info string) []string {
		l := []string{file(info)}
		if s := filepath.Join(d.path, "in_"+typ+m[3]+"_"+info); s != l[0] {
			l = append(l, s)
		}
		return l
	}
	c.scale, c.offset = shared("scale"), shared("offset")
	for _, k := range knownADCs {
		if k.name.MatchString(d.Name) {
			c.defScale = k.scale
			c.maxRaw = 1<<k.bits - 1
		}
	}
	if d.opts.Scale != 0 {
		c.defScale = d.opts.Scale
	}
	if bits, signed, ok := scanType(filepath.Join(d.path, "scan_elements", "in_"+name+"_type")); ok {
		if signed {
			c.maxRaw, c.minRaw = 1<<(bits-1)-1, -1<<(bits-1)
		} else {
			c.maxRaw, c.minRaw = 1<<bits-1, 0
		}
	}
	if c.input == "" && c.raw != "" && c.defScale == 0 && firstExisting(c.scale) == "" {
		return channel{}, fmt.Errorf("iio: %s (%s) %s: raw counts without a scale file: set options.scale (%s per count)", d.Name, d.Dir, name, map[string]string{"voltage": "mV", "temp": "m°C", "humidityrelative": "m%RH", "pressure": "kPa", "illuminance": "lx"}[typ])
	}
	return c, nil
}

var scanTypeRe = regexp.MustCompile(`^[bl]e:([su])([0-9]+)/([0-9]+)>>([0-9]+)$`)

// scanType reads a buffer scan type such as "le:u12/16>>0".
func scanType(path string) (bits int, signed, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false, false
	}
	m := scanTypeRe.FindStringSubmatch(strings.TrimSpace(string(b)))
	if m == nil {
		return 0, false, false
	}
	bits, _ = strconv.Atoi(m[2])
	if bits < 1 || bits > 62 {
		return 0, false, false
	}
	return bits, m[1] == "s", true
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func firstExisting(l []string) string {
	for _, p := range l {
		if exists(p) {
			return p
		}
	}
	return ""
}

// Read takes one sample, retrying the kernel's transient failures within
// ctx's deadline.
func (d *Dev) Read(ctx context.Context) (Sample, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return Sample{}, err
		}
		s, err := d.pass()
		if err == nil || !transient(err) {
			return s, err
		}
		wait := retryWaits[min(attempt, len(retryWaits)-1)]
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return Sample{}, fmt.Errorf("%w (%d %s, no time left to retry)", err, attempt+1, plural(attempt+1, "attempt", "attempts"))
		}
		if serr := d.opts.Sleep(ctx, wait); serr != nil {
			return Sample{}, fmt.Errorf("%w (%d %s, then %w)", err, attempt+1, plural(attempt+1, "attempt", "attempts"), serr)
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// transient reports whether the kernel's read error is worth a retry.
func transient(err error) bool {
	for _, e := range []error{syscall.EIO, syscall.ETIMEDOUT, syscall.EAGAIN, syscall.EBUSY} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// pass reads every channel once.
func (d *Dev) pass() (Sample, error) {
	s := Sample{Values: make(map[string]float64, len(d.channels))}
	for _, c := range d.channels {
		v, raw, hasRaw, err := d.read(c)
		if err != nil {
			return Sample{}, err
		}
		s.Values[c.quantity.Name] = v
		if len(d.channels) == 1 {
			s.Raw, s.HasRaw = raw, hasRaw
		}
	}
	return s, nil
}

// read returns one channel's value in the wire unit, and its raw count
// when it has one.
func (d *Dev) read(c channel) (v float64, raw int64, hasRaw bool, err error) {
	if c.raw != "" {
		r, err := d.number(c.raw)
		if err != nil {
			return 0, 0, false, err
		}
		if r != math.Trunc(r) {
			return 0, 0, false, fmt.Errorf("iio: %s: %w: raw %v is not a count", c.raw, ErrFormat, r)
		}
		raw, hasRaw = int64(r), true
		if c.maxRaw != 0 && (raw >= c.maxRaw || (c.minRaw < 0 && raw <= c.minRaw)) {
			return 0, 0, false, fmt.Errorf("iio: %s %s: raw %d at the end of the ADC's range: the input is at or beyond full scale (a BeagleBone's AIN pins take at most 1.8 V)", d.Name, c.name, raw)
		}
	}
	var x float64
	if c.input != "" {
		if x, err = d.number(c.input); err != nil {
			return 0, 0, false, err
		}
	} else {
		scale, offset := c.defScale, 0.0
		if p := firstExisting(c.scale); p != "" {
			if scale, err = d.number(p); err != nil {
				return 0, 0, false, err
			}
		}
		if p := firstExisting(c.offset); p != "" {
			if offset, err = d.number(p); err != nil {
				return 0, 0, false, err
			}
		}
		x = (float64(raw) + offset) * scale
	}
	v = x * c.quantity.Mul / c.quantity.Div
	if c.quantity.Name == "humidity" && (v < 0 || v > 100) {
		return 0, 0, false, fmt.Errorf("iio: %s %s: humidity %.4g %%RH outside 0..100", d.Name, c.name, v)
	}
	return v, raw, hasRaw, nil
}

// number reads a sysfs file holding one number.
func (d *Dev) number(path string) (float64, error) {
	b, err := d.opts.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("iio: %s: gone (device removed or re-probed): %w", path, err)
		}
		return 0, fmt.Errorf("iio: %s %s: read: %w", d.Name, filepath.Base(path), err)
	}
	s := strings.TrimSpace(string(b))
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("iio: %s %s: %w: %q", d.Name, filepath.Base(path), ErrFormat, s)
	}
	return x, nil
}
