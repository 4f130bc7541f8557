package sensors

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options are a sensor's driver options as the config file gives them.
// Drivers read them through the typed getters, which record each key used,
// so Done can reject keys no getter asked for: a typo in an option must
// not be silently ignored any more than a typo in a top-level key.
type Options struct {
	m      map[string]any
	used   map[string]bool
	errs   []error
	claims []Claim
}

// Claim is hardware a sensor uses, declared by its Kind's Prepare with
// Options.Claim, so that ValidateConfigs refuses two sensors that would
// drive one chip, or two chips that would answer one address.
type Claim interface {
	// Conflict says why this claim and another sensor's cannot both be
	// held ("both are /dev/i2c-1 0x44"), or returns "" when they can.
	Conflict(other Claim) string
}

// NewOptions wraps an options map (nil is fine).
func NewOptions(m map[string]any) *Options {
	return &Options{m: m, used: map[string]bool{}}
}

func (o *Options) get(key string) (any, bool) {
	o.used[key] = true
	v, ok := o.m[key]
	return v, ok && v != nil
}

func (o *Options) fail(key string, format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// Has reports whether key is set.
func (o *Options) Has(key string) bool {
	_, ok := o.get(key)
	return ok
}

// String returns a string option, or def when it is absent.
func (o *Options) String(key, def string) string {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	switch s := v.(type) {
	case string:
		return s
	case fmt.Stringer:
		return s.String()
	}
	o.fail(key, "want a string, got %v", v)
	return def
}

// Strings returns a list of strings option.
func (o *Options) Strings(key string, def []string) []string {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				o.fail(key, "want a list of strings, got %v", v)
				return def
			}
			out = append(out, s)
		}
		return out
	case string:
		// "temperature, humidity" from an environment variable or a flag.
		out := strings.Split(l, ",")
		for i := range out {
			out[i] = strings.TrimSpace(out[i])
		}
		return out
	}
	o.fail(key, "want a list of strings, got %v", v)
	return def
}

// Float returns a number option.
func (o *Options) Float(key string, def float64) float64 {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	f, err := toFloat(v)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		o.fail(key, "want a number, got %v", v)
		return def
	}
	return f
}

// Int returns an integer option; it accepts 0x.. hex strings (YAML already
// reads an unquoted 0x48 as 72).
func (o *Options) Int(key string, def int) int {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	if s, isStr := v.(string); isStr {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
		if err != nil {
			o.fail(key, "want an integer, got %q", s)
			return def
		}
		return int(n)
	}
	f, err := toFloat(v)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		o.fail(key, "want an integer, got %v", v)
		return def
	}
	return int(f)
}

// Bool returns a boolean option.
func (o *Options) Bool(key string, def bool) bool {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	switch b := v.(type) {
	case bool:
		return b
	case string:
		if p, err := strconv.ParseBool(b); err == nil {
			return p
		}
	}
	o.fail(key, "want true or false, got %v", v)
	return def
}

// Duration returns a duration option; a unit is required ("750ms").
func (o *Options) Duration(key string, def time.Duration) time.Duration {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		o.fail(key, "want a duration with a unit such as 750ms, got %v", v)
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		o.fail(key, "want a duration with a unit such as 750ms, got %q", s)
		return def
	}
	return d
}

var busName = regexp.MustCompile(`^/dev/i2c-[0-9]+$`)

// Bus returns the required I2C bus option, of the form /dev/i2c-N. There
// is no default bus: a Pi uses /dev/i2c-1, a BeagleBone's P9 header
// /dev/i2c-2, and guessing wrong reads some other chip.
func (o *Options) Bus(key string) string {
	v := o.String(key, "")
	switch {
	case v == "":
		o.fail(key, "required (e.g. /dev/i2c-1 on a Raspberry Pi, /dev/i2c-2 on a BeagleBone Black)")
	case !busName.MatchString(v):
		o.fail(key, "%q is not an I2C bus name of the form /dev/i2c-N", v)
	}
	return v
}

// Address returns a 7-bit I2C address option, in the range devices may use
// (0x03..0x77), or def when absent (def 0 makes it required).
func (o *Options) Address(key string, def uint16) uint16 {
	if !o.Has(key) {
		if def == 0 {
			o.fail(key, "required")
		}
		return def
	}
	n := o.Int(key, int(def))
	if n < 0x03 || n > 0x77 {
		o.fail(key, "%#x out of range 0x03..0x77", n)
		return def
	}
	return uint16(n)
}

// Fail records a driver-specific error about key.
func (o *Options) Fail(key string, format string, args ...any) { o.fail(key, format, args...) }

// Claim records hardware the sensor uses; see Claim.
func (o *Options) Claim(c Claim) { o.claims = append(o.claims, c) }

// Claims returns what Claim recorded.
func (o *Options) Claims() []Claim { return o.claims }

// Done returns every error found, including keys that no getter read.
func (o *Options) Done() error {
	var unknown []string
	for k := range o.m {
		if !o.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	errs := o.errs
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("%s: unknown option", k))
	}
	return errors.Join(errs...)
}

func toFloat(v any) (float64, error) {
	switch n := v.(type) {
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case int32:
		return float64(n), nil
	case uint64:
		return float64(n), nil
	case uint32:
		return float64(n), nil
	case uint16:
		return float64(n), nil
	case uint8:
		return float64(n), nil
	case float64:
		return n, nil
	case float32:
		return float64(n), nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(n), 64)
	}
	return 0, fmt.Errorf("not a number: %v", v)
}
