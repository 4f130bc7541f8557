package update

import (
	"errors"
	"fmt"
	"time"
)

// Config is the update section of the config file.
type Config struct {
	// PublicKeyFile is the ed25519 public key (PEM "PUBLIC KEY", as
	// `openssl pkey -pubout` writes it) that every update must be signed
	// with. Empty: updates are refused.
	PublicKeyFile string `mapstructure:"public_key_file"`
	// HealthTimeout is how long a new version has, from its start, to
	// prove healthy (config loaded, buffer open, sensors scheduled, broker
	// connected) before the previous version is brought back. Default 5m.
	HealthTimeout time.Duration `mapstructure:"health_timeout"`
	// CAFile is the CA bundle that verifies the download server; empty
	// means the system roots (S3 needs nothing else). For tests and
	// private mirrors.
	CAFile string `mapstructure:"ca_file"`
}

// DefaultConfig is the documented defaults: no key (updates refused),
// 5 minutes to prove health, system roots.
func DefaultConfig() Config {
	return Config{HealthTimeout: 5 * time.Minute}
}

// Health timeouts outside these bounds are refused: below, a slow SD card
// and a cold TLS handshake could fail a good release; above, a bad one
// keeps a kit offline for most of a day.
const (
	minHealthTimeout = time.Second
	maxHealthTimeout = 6 * time.Hour
)

// Validate checks the settings; errors name the field (health_timeout),
// the caller prefixes "update.". The key file is read when an update
// arrives, so a kit without one still runs.
func (c Config) Validate() error {
	var errs []error
	if c.HealthTimeout < minHealthTimeout || c.HealthTimeout > maxHealthTimeout {
		errs = append(errs, fmt.Errorf("health_timeout: %s: must be between %s and %s", c.HealthTimeout, minHealthTimeout, maxHealthTimeout))
	}
	return errors.Join(errs...)
}

// ValidateFiles reads the files the section names: the public key must be
// an ed25519 "PUBLIC KEY" nobody else may write, the CA a PEM bundle.
// A kit with a broken key must hear it from `kitd config check`, not from
// its first update job.
func (c Config) ValidateFiles() error {
	var errs []error
	if c.PublicKeyFile != "" {
		if _, err := LoadPublicKey(c.PublicKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("public_key_file: %w", err))
		}
	}
	if c.CAFile != "" {
		if _, err := newHTTPClient(c.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("ca_file: %w", err))
		}
	}
	return errors.Join(errs...)
}
