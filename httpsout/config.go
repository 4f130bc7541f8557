package httpsout

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/kitd-dev/kitd/datasize"
)

// Config is the https section of the config file, used with output: https.
type Config struct {
	// URL receives the POSTs: an https:// URL.
	URL string `mapstructure:"url"`
	// CAFile verifies the server; "" (the default) uses the system roots.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile: a client certificate for mutual TLS (AWS
	// IoT's HTTPS endpoint); both or neither.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// APIKeyFile holds the value of the x-api-key header (API Gateway);
	// "" sends none.
	APIKeyFile string `mapstructure:"api_key_file"`
	// Timeout bounds one request, connection included. Default 10s.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxReadings and MaxBytes bound one POST. Defaults 100 and 64KiB
	// (AWS IoT's HTTPS publish takes at most 128 KB).
	MaxReadings int           `mapstructure:"max_readings"`
	MaxBytes    datasize.Size `mapstructure:"max_bytes"`
}

// Limits of the settings.
const (
	maxReadingsLimit = 10000
	minBytes         = 1 * datasize.KiB
	maxBytes         = 128 * datasize.KiB
)

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Timeout: 10 * time.Second, MaxReadings: 100, MaxBytes: 64 * datasize.KiB}
}

// ValidateSettings checks the form of every field without reading files;
// each error starts with the field's key relative to the https section.
func (c Config) ValidateSettings() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.URL == "" {
		fail("url", "required with output: https")
	} else if u, err := url.Parse(c.URL); err != nil {
		fail("url", "%q is not a URL: %v", c.URL, err)
	} else if u.Scheme != "https" || u.Host == "" {
		fail("url", "%q: want https://host[:port]/path (plain http would send readings and the API key in the clear)", c.URL)
	} else if u.User != nil {
		fail("url", "must not carry a user or password: use api_key_file or a client certificate")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		fail("cert_file", "cert_file and key_file go together (mutual TLS): set both or neither")
	}
	if c.Timeout <= 0 {
		fail("timeout", "must be positive")
	}
	if c.MaxReadings < 1 || c.MaxReadings > maxReadingsLimit {
		fail("max_readings", "must be between 1 and %d, got %d", maxReadingsLimit, c.MaxReadings)
	}
	if c.MaxBytes < minBytes || c.MaxBytes > maxBytes {
		fail("max_bytes", "must be between %s and %s, got %s", minBytes, maxBytes, c.MaxBytes)
	}
	return errors.Join(errs...)
}

// ValidateFiles reads the files the section names and checks them
// (present, permissions, parseable, the key matching the certificate).
func (c Config) ValidateFiles() error {
	_, err := c.load()
	return err
}

// Validate is ValidateSettings and ValidateFiles.
func (c Config) Validate() error {
	if err := c.ValidateSettings(); err != nil {
		return err
	}
	return c.ValidateFiles()
}
