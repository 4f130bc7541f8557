package shadow

import (
	"errors"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/internal/ident"
)

// Config is the shadow section of the config file.
type Config struct {
	// Enabled turns the shadow on. Default true.
	Enabled bool `mapstructure:"enabled"`
	// Name selects a named shadow; "" (the default) is the classic shadow.
	Name string `mapstructure:"name"`
	// StateFile keeps the last applied desired state across restarts.
	// Default /var/lib/kitd/shadow.json.
	StateFile string `mapstructure:"state_file"`
	// MinReportInterval is the least time between two reports of changed
	// agent state; acknowledgements of desired changes go at once.
	// Default 10s, at least 1s.
	MinReportInterval time.Duration `mapstructure:"min_report_interval"`
	// Heartbeat is how often the volatile figures (buffer pending and
	// bytes, sensors' last_reading_ts) are reported when nothing else
	// changed: they ride along with any real change, and alone go at most
	// this often, so an idle kit's shadow is quiet. Default 1h, at least
	// min_report_interval.
	Heartbeat time.Duration `mapstructure:"heartbeat"`
}

// minReportFloor keeps a fleet of kits far below AWS's per-thing shadow
// update rate, whatever the config says.
const minReportFloor = time.Second

// validShadowName is AWS's rule for a named shadow: it becomes a topic
// level, so '/', '+', '#' and '$' must never reach it.
func validShadowName(s string) bool { return ident.Valid(s, 1, 64, "", ident.Alnum+":_-") }

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Enabled:           true,
		StateFile:         "/var/lib/kitd/shadow.json",
		MinReportInterval: 10 * time.Second,
		Heartbeat:         time.Hour,
	}
}

// Validate reports every invalid field, each error starting with the field's
// key relative to the shadow section.
func (c Config) Validate() error {
	var errs []error
	if c.Name != "" && !validShadowName(c.Name) {
		errs = append(errs, fmt.Errorf("name: %q: use 1 to 64 letters, digits, ':', '_' or '-'", c.Name))
	}
	if c.Enabled && c.StateFile == "" {
		errs = append(errs, errors.New("state_file: must not be empty"))
	}
	switch {
	case c.MinReportInterval <= 0:
		errs = append(errs, errors.New("min_report_interval: must be positive"))
	case c.MinReportInterval < minReportFloor:
		errs = append(errs, fmt.Errorf("min_report_interval: must be at least %s", minReportFloor))
	}
	switch {
	case c.Heartbeat <= 0:
		errs = append(errs, errors.New("heartbeat: must be positive"))
	case c.MinReportInterval > 0 && c.Heartbeat < c.MinReportInterval:
		errs = append(errs, fmt.Errorf("heartbeat: must be at least min_report_interval (%s)", c.MinReportInterval))
	}
	return errors.Join(errs...)
}
