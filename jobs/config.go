package jobs

import "errors"

// Config is the jobs section of the config file.
type Config struct {
	// Enabled runs AWS IoT Jobs executions sent to the kit. Default true.
	// On a broker without a Jobs service (Mosquitto) turn it off: the
	// client would ask for the next execution at every connect and wait
	// for an answer that never comes (harmless, but noise in the log).
	Enabled bool `mapstructure:"enabled"`
	// StateFile keeps the settings kitd.set-config applied, so they
	// survive a restart. Default /var/lib/kitd/jobs.json.
	StateFile string `mapstructure:"state_file"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Enabled: true, StateFile: "/var/lib/kitd/jobs.json"}
}

// Validate reports every invalid field, each error starting with the
// field's key relative to the jobs section.
func (c Config) Validate() error {
	if c.Enabled && c.StateFile == "" {
		return errors.New("state_file: must not be empty")
	}
	return nil
}
