package alerts

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kitd-dev/kitd/internal/ident"
)

// Rule is one entry of the config file's alerts list.
type Rule struct {
	// Name identifies the rule in messages and in the shadow.
	Name     string `mapstructure:"name"`
	Sensor   string `mapstructure:"sensor"`
	Quantity string `mapstructure:"quantity"`
	// Exactly one of Above and Below: fire when the value is above
	// (below) it.
	Above *float64 `mapstructure:"above"`
	Below *float64 `mapstructure:"below"`
	// Hysteresis: how far back past the threshold the value must go to
	// resolve. Default 0.
	Hysteresis float64 `mapstructure:"hysteresis"`
	// For is how long the condition must hold before firing. Default 0
	// (the first reading past the threshold fires).
	For time.Duration `mapstructure:"for"`
	// Repeat re-sends "firing" this often while it holds; 0 (the
	// default) never re-alerts.
	Repeat time.Duration `mapstructure:"repeat"`
}

// Config is the alerts list. The zero value (no rules) is the default.
type Config []Rule

// Quantities are the quantity names of the wire contract, the only ones a
// rule may watch.
var Quantities = []string{
	"temperature", "humidity", "pressure", "moisture", "co2", "illuminance",
	"voltage", "current", "power", "pm1", "pm2_5", "pm10",
}

// threshold is the rule's threshold and direction.
func (r Rule) threshold() (v float64, above bool) {
	if r.Above != nil {
		return *r.Above, true
	}
	if r.Below != nil {
		return *r.Below, false
	}
	return 0, false
}

// Validate checks every rule against the configured sensor names; each
// error names its field by path, e.g. "alerts[0] (dry-soil).below".
func (c Config) Validate(sensors []string) error {
	var errs []error
	seen := map[string]int{}
	for i, r := range c {
		at := fmt.Sprintf("alerts[%d]", i)
		if r.Name != "" {
			at += " (" + r.Name + ")"
		}
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s.%s: %s", at, field, fmt.Sprintf(format, args...)))
		}
		switch {
		case r.Name == "":
			bad("name", "must not be empty")
		case !ident.Name(r.Name):
			bad("name", "%q: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", r.Name)
		default:
			if j, dup := seen[r.Name]; dup {
				bad("name", "also the name of alerts[%d]; names must be unique", j)
			}
			seen[r.Name] = i
		}
		switch {
		case r.Sensor == "":
			bad("sensor", "must not be empty")
		case !slices.Contains(sensors, r.Sensor):
			bad("sensor", "%q is not a configured sensor (sensors: %v)", r.Sensor, sensors)
		}
		switch {
		case r.Quantity == "":
			bad("quantity", "must not be empty")
		case !slices.Contains(Quantities, r.Quantity):
			bad("quantity", "%q is not a quantity kitd reports (one of %v)", r.Quantity, Quantities)
		}
		switch {
		case r.Above == nil && r.Below == nil:
			bad("above", "set exactly one of above and below")
		case r.Above != nil && r.Below != nil:
			bad("below", "set exactly one of above and below, not both")
		case r.Above != nil && !finite(*r.Above):
			bad("above", "must be a finite number")
		case r.Below != nil && !finite(*r.Below):
			bad("below", "must be a finite number")
		}
		if r.Hysteresis < 0 || !finite(r.Hysteresis) {
			bad("hysteresis", "must be a finite number >= 0")
		}
		if r.For < 0 {
			bad("for", "must not be negative")
		}
		if r.Repeat < 0 {
			bad("repeat", "must not be negative (0 never re-alerts)")
		}
	}
	return errors.Join(errs...)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
