package sensors

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/kitd-dev/kitd/internal/ident"
)

// Config is one entry of the config file's sensors list.
type Config struct {
	Name   string `mapstructure:"name"`
	Driver string `mapstructure:"driver"`
	// Interval between reads.
	Interval time.Duration `mapstructure:"interval"`
	// Enabled defaults to true; nil means unset.
	Enabled *bool `mapstructure:"enabled"`
	// Timeout is the per-read deadline; 0 means the driver's default.
	Timeout time.Duration `mapstructure:"timeout"`
	// Options are the driver's own options (bus, address, ...).
	Options map[string]any `mapstructure:"options"`
	// Calibrate corrects each quantity: value*scale + offset.
	Calibrate map[string]Calibration `mapstructure:"calibrate"`
	// Deadband skips a reading whose every value moved less than this
	// since the last reading kept; 0 keeps every reading.
	Deadband float64 `mapstructure:"deadband"`
	// MaxSilence: with a deadband, keep a reading at least this often.
	MaxSilence time.Duration `mapstructure:"max_silence"`
}

// Calibration is a linear correction of one quantity.
type Calibration struct {
	Offset float64  `mapstructure:"offset"`
	Scale  *float64 `mapstructure:"scale"` // nil means 1
}

// Apply corrects v.
func (c Calibration) Apply(v float64) float64 {
	s := 1.0
	if c.Scale != nil {
		s = *c.Scale
	}
	return v*s + c.Offset
}

// IsEnabled reads Enabled with its default.
func (c Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// DefaultMaxSilence applies when a deadband is set without max_silence.
const DefaultMaxSilence = 15 * time.Minute

// ValidateConfigs checks the sensors list against the registry: names,
// intervals, drivers and each driver's options, and that no two sensors
// claim hardware that conflicts (see Claim), enabled or not: a shadow
// delta may enable either. Every error names the entry as sensors[i]
// (name) and the field, e.g. "sensors[2] (soil-1).interval: must be
// positive"; a conflict names both sensors.
func ValidateConfigs(reg *Registry, cfgs []Config) error {
	var errs []error
	seen := map[string]int{}
	type held struct {
		at    string
		claim Claim
	}
	var claimed []held
	for i, c := range cfgs {
		at := fmt.Sprintf("sensors[%d]", i)
		if c.Name != "" {
			at += " (" + c.Name + ")"
		}
		fail := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s.%s: %s", at, field, fmt.Sprintf(format, args...)))
		}
		switch {
		case c.Name == "":
			fail("name", "required")
		case !ident.Name(c.Name):
			fail("name", "%q: use letters, digits, '-', '_' or '.', at most 64", c.Name)
		default:
			if j, dup := seen[c.Name]; dup {
				fail("name", "duplicate of sensors[%d]", j)
			}
			seen[c.Name] = i
		}
		if err := ValidateInterval(c.Interval); err != nil {
			fail("interval", "%v", err)
		}
		if c.Timeout < 0 {
			fail("timeout", "must be positive")
		}
		if c.Deadband < 0 || math.IsNaN(c.Deadband) || math.IsInf(c.Deadband, 0) {
			fail("deadband", "must be a finite number, not negative")
		}
		if c.MaxSilence < 0 {
			fail("max_silence", "must be positive")
		}
		for _, q := range sortedKeys(c.Calibrate) {
			cal := c.Calibrate[q]
			if cal.Scale != nil && (*cal.Scale == 0 || !finite(*cal.Scale)) {
				fail("calibrate."+q+".scale", "must be a finite number other than 0")
			}
			if !finite(cal.Offset) {
				fail("calibrate."+q+".offset", "must be a finite number")
			}
		}
		if c.Driver == "" {
			fail("driver", "required")
			continue
		}
		kind, ok := reg.Lookup(c.Driver)
		if !ok {
			fail("driver", "unknown driver %q (known: %v)", c.Driver, reg.Names())
			continue
		}
		opts := NewOptions(c.Options)
		if _, err := kind.Prepare(c.Name, opts); err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fmt.Errorf("%s.options.%w", at, e))
			}
			continue
		}
		for _, cl := range opts.Claims() {
			for _, h := range claimed {
				if why := cl.Conflict(h.claim); why != "" {
					errs = append(errs, fmt.Errorf("%s.options: conflicts with %s: %s", at, h.at, why))
				}
			}
		}
		for _, cl := range opts.Claims() {
			claimed = append(claimed, held{at, cl})
		}
	}
	return errors.Join(errs...)
}

// ValidateInterval is the rule for a sensor interval, shared by the config
// file and shadow deltas so both accept the same values.
func ValidateInterval(d time.Duration) error {
	switch {
	case d <= 0:
		return errors.New("must be positive")
	case d < 100*time.Millisecond:
		return errors.New("must be at least 100ms")
	case d > 24*time.Hour:
		return errors.New("must be at most 24h")
	}
	return nil
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// sortedKeys keeps errors about map entries in a stable order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
