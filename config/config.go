// Package config reads kitd's YAML config file: the sections every package
// owns, side by side, with KITD_ environment overrides. It knows the file
// format and nothing of what the sections mean; each package validates its
// own section.
package config

import (
	"errors"
	"fmt"

	"github.com/kitd-dev/kitd/alerts"
	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/httpsout"
	"github.com/kitd-dev/kitd/jobs"
	"github.com/kitd-dev/kitd/provision"
	"github.com/kitd-dev/kitd/publisher"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/shadow"
	"github.com/kitd-dev/kitd/telemetry"
	"github.com/kitd-dev/kitd/update"
)

// DefaultFile is where `-c` points when it is not given.
const DefaultFile = "/etc/kitd/config.yaml"

// Device is the kit's identity.
type Device struct {
	// ID is the AWS IoT thing name and the MQTT client id.
	ID string `mapstructure:"id"`
}

// Config is the whole file.
type Config struct {
	Device Device           `mapstructure:"device"`
	MQTT   publisher.Config `mapstructure:"mqtt"`
	// Output is where readings go: OutputMQTT (the default) or
	// OutputHTTPS (POSTs per the https section; no status, no shadow).
	Output  string           `mapstructure:"output"`
	HTTPS   httpsout.Config  `mapstructure:"https"`
	Buffer  buffer.Config    `mapstructure:"buffer"`
	Shadow  shadow.Config    `mapstructure:"shadow"`
	Jobs    jobs.Config      `mapstructure:"jobs"`
	Clock   clock.Config     `mapstructure:"clock"`
	Update  update.Config    `mapstructure:"update"`
	Sensors []sensors.Config `mapstructure:"sensors"`

	// Provisioning is optional: with a template set, device.id,
	// mqtt.cert_file and mqtt.key_file may be empty (see Identity).
	Provisioning provision.Config `mapstructure:"provisioning"`
	// Alerts are the edge alert rules; checked with the sensors.
	Alerts alerts.Config `mapstructure:"alerts"`
}

// Default is the config with every package's defaults and no sensors.
func Default() Config {
	return Config{
		MQTT:   publisher.DefaultConfig(),
		Output: OutputMQTT,
		HTTPS:  httpsout.DefaultConfig(),
		Buffer: buffer.DefaultConfig(),
		Shadow: shadow.DefaultConfig(),
		Jobs:   jobs.DefaultConfig(),
		Clock:  clock.DefaultConfig(),

		Provisioning: provision.DefaultConfig(),
		Update:       update.DefaultConfig(),
	}
}

// The outputs.
const (
	OutputMQTT  = "mqtt"
	OutputHTTPS = "https"
)

// Parts name what ValidateParts checks, so that a command that uses one
// section (`buffer stats`, `sensors read`) is not refused for another,
// and `config check --skip-files` can check a kit's config elsewhere.
type Parts uint

const (
	PartDevice Parts = 1 << iota
	// PartMQTT is the mqtt section without reading the files it names: a
	// TLS broker still needs ca_file, cert_file and key_file set.
	PartMQTT
	// PartFiles reads the files mqtt names: present, safe permissions,
	// parseable, the key matching the certificate.
	PartFiles
	PartBuffer
	PartShadow
	PartClock
	PartSensors
	// PartUpdate is the update section; with PartFiles it also reads
	// update.public_key_file and update.ca_file.
	PartUpdate

	// AllParts is what `kitd run` needs.
	AllParts = PartDevice | PartMQTT | PartFiles | PartBuffer | PartShadow | PartClock | PartSensors | PartUpdate
)

// Validate checks every section, returning every error found, each naming
// its field by path (mqtt.keepalive, sensors[2] (soil-1).interval).
func (c *Config) Validate(reg *sensors.Registry) error {
	return c.ValidateParts(reg, AllParts)
}

// ValidateParts is Validate limited to parts; reg is only used for
// PartSensors.
func (c *Config) ValidateParts(reg *sensors.Registry, parts Parts) error {
	var errs []error
	if parts&PartDevice != 0 && (!c.provisioned() || c.Device.ID != "") {
		if err := telemetry.CheckDevice(c.Device.ID); err != nil {
			errs = append(errs, fmt.Errorf("device.id: %w", err))
		}
	}
	if c.Output != OutputMQTT && c.Output != OutputHTTPS && parts&PartMQTT != 0 {
		errs = append(errs, fmt.Errorf("output: %q: want %s or %s", c.Output, OutputMQTT, OutputHTTPS))
	}
	if c.Output == OutputHTTPS {
		// Readings go by HTTPS: the mqtt section is not used, https is.
		errs = append(errs, c.validateHTTPS(parts)...)
	} else {
		mq, rename := c.mqttToValidate(parts&PartFiles != 0)
		switch parts & (PartMQTT | PartFiles) {
		case PartMQTT | PartFiles:
			errs = append(errs, rename(mq.Validate())...)
		case PartMQTT:
			errs = append(errs, rename(mq.ValidateSettings())...)
		case PartFiles:
			errs = append(errs, rename(mq.ValidateFiles())...)
		}
	}
	if parts&PartMQTT != 0 {
		errs = append(errs, prefixed("provisioning.", c.Provisioning.Validate())...)
		if c.Output == OutputHTTPS && c.Provisioning.Enabled() {
			// Onboarding and renewal speak AWS's MQTT API; an HTTPS-only
			// kit has no connection to run them on.
			errs = append(errs, errors.New("provisioning.template: fleet provisioning needs output: mqtt"))
		}
	}
	if parts&PartBuffer != 0 {
		errs = append(errs, prefixed("buffer.", c.Buffer.Validate())...)
	}
	if parts&PartShadow != 0 {
		errs = append(errs, prefixed("shadow.", c.Shadow.Validate())...)
	}
	if parts&PartShadow != 0 {
		// The jobs section goes with the shadow's: both are AWS IoT
		// device services that only `run` uses.
		errs = append(errs, prefixed("jobs.", c.Jobs.Validate())...)
	}
	if parts&PartClock != 0 {
		errs = append(errs, prefixed("clock.", c.Clock.Validate())...)
	}
	if parts&PartUpdate != 0 {
		errs = append(errs, prefixed("update.", c.Update.Validate())...)
		if parts&PartFiles != 0 {
			errs = append(errs, prefixed("update.", c.Update.ValidateFiles())...)
		}
	}
	if parts&PartSensors != 0 {
		if err := sensors.ValidateConfigs(reg, c.Sensors); err != nil {
			errs = append(errs, split(err)...)
		}
		errs = append(errs, split(c.Alerts.Validate(c.SensorNames()))...)
	}
	return errors.Join(errs...)
}

// Effective fills in the defaults that depend on other fields (a sensor's
// timeout is its driver's), so `config check` prints what kitd will use
// rather than zeros that stand for "the default".
func (c Config) Effective(reg *sensors.Registry) Config {
	out := c
	if out.Provisioning.Enabled() && len(out.Provisioning.Parameters) == 0 {
		out.Provisioning.Parameters = provision.DefaultParameters()
	}
	out.Sensors = make([]sensors.Config, len(c.Sensors))
	for i, s := range c.Sensors {
		on := s.IsEnabled()
		s.Enabled = &on
		if s.Timeout == 0 {
			s.Timeout = sensors.DefaultTimeout
			if k, ok := reg.Lookup(s.Driver); ok && k.Timeout > 0 {
				s.Timeout = k.Timeout
			}
		}
		if len(s.Calibrate) > 0 {
			cal := make(map[string]sensors.Calibration, len(s.Calibrate))
			for q, c := range s.Calibrate {
				if c.Scale == nil {
					one := 1.0
					c.Scale = &one
				}
				cal[q] = c
			}
			s.Calibrate = cal
		}
		if s.Deadband > 0 && s.MaxSilence == 0 {
			s.MaxSilence = sensors.DefaultMaxSilence
		}
		out.Sensors[i] = s
	}
	return out
}

// SensorNames lists the configured sensors.
func (c *Config) SensorNames() []string {
	names := make([]string, len(c.Sensors))
	for i, s := range c.Sensors {
		names[i] = s.Name
	}
	return names
}

func (c *Config) validateHTTPS(parts Parts) []error {
	var errs []error
	if parts&PartMQTT != 0 {
		errs = append(errs, prefixed("https.", c.HTTPS.ValidateSettings())...)
	}
	if parts&PartFiles != 0 && len(errs) == 0 {
		errs = append(errs, prefixed("https.", c.HTTPS.ValidateFiles())...)
	}
	return errs
}

func prefixed(prefix string, err error) []error {
	var out []error
	for _, e := range split(err) {
		out = append(out, fmt.Errorf("%s%w", prefix, e))
	}
	return out
}

// split flattens joined errors so each line can carry its own path.
func split(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, split(e)...)
		}
		return out
	}
	return []error{err}
}
