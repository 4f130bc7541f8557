package jobs

// Config is the jobs section of the config file.
type Config struct {
	// Enabled runs AWS IoT Jobs executions sent to the kit. Default true.
	// On a broker without a Jobs service (Mosquitto) turn it off: the
	// client would ask for the next execution at every connect and wait
	// for an answer that never comes (harmless, but noise in the log).
	Enabled bool `mapstructure:"enabled"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{Enabled: true} }

// Validate reports invalid fields; there are none to get wrong yet.
func (c Config) Validate() error { return nil }
