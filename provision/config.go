package provision

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/internal/ident"
)

// Config is the provisioning section of the config file. Provisioning is
// on when Template is set; the rest then applies.
type Config struct {
	// Template is the AWS IoT fleet provisioning template's name. "" (the
	// default) turns provisioning off.
	Template string `mapstructure:"template"`
	// ClaimCertFile and ClaimKeyFile are the claim certificate and key
	// shared by every kit of a batch: they may only ask for an identity
	// (deploy/aws/claim-policy.json). The key follows the key-file rules.
	ClaimCertFile string `mapstructure:"claim_cert_file"`
	ClaimKeyFile  string `mapstructure:"claim_key_file"`
	// Parameters are the template's parameters; values may hold the
	// placeholders {serial}, {hostname} and {mac}. Names are kept as
	// written (AWS template parameters are case-sensitive). Default
	// {SerialNumber: "{serial}"}.
	Parameters map[string]string `mapstructure:"parameters"`
	// Dir holds the kit's own identity once made (identity.pem) and the
	// state of an onboarding or renewal under way. Default
	// /var/lib/kitd/identity.
	Dir string `mapstructure:"dir"`
	// RenewBefore: a certificate that expires within this long is renewed
	// over the kit's own connection. Default 720h (30 days); at least 1h.
	RenewBefore time.Duration `mapstructure:"renew_before"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Dir:         "/var/lib/kitd/identity",
		RenewBefore: 720 * time.Hour,
	}
}

// DefaultParameters are used when the section names none.
func DefaultParameters() map[string]string {
	return map[string]string{"SerialNumber": "{serial}"}
}

// Enabled reports whether fleet provisioning is configured.
func (c Config) Enabled() bool { return c.Template != "" }

// params are the parameters in effect.
func (c Config) params() map[string]string {
	if len(c.Parameters) == 0 {
		return DefaultParameters()
	}
	return c.Parameters
}

// validTemplateName is what AWS IoT accepts as a provisioning template
// name.
func validTemplateName(s string) bool { return ident.Valid(s, 1, 36, "", ident.Alnum+"_-") }

// placeholder matches {name} in a parameter value.
var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// Validate checks the section's values without reading any file (the
// claim files are checked as mqtt's TLS files are, by config). Errors
// name the field (template, parameters.SerialNumber).
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !validTemplateName(c.Template) {
		fail("template", "%q: want 1-36 letters, digits, '-' or '_' (an AWS IoT provisioning template name)", c.Template)
	}
	if c.ClaimCertFile == "" {
		fail("claim_cert_file", "required with template")
	}
	if c.ClaimKeyFile == "" {
		fail("claim_key_file", "required with template")
	}
	if c.Dir == "" {
		fail("dir", "required with template")
	} else if !filepath.IsAbs(c.Dir) {
		fail("dir", "%q: want an absolute path", c.Dir)
	}
	if c.RenewBefore < time.Hour {
		fail("renew_before", "must be at least 1h, got %s", c.RenewBefore)
	}
	names := make([]string, 0, len(c.Parameters))
	for k := range c.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if k == "" || strings.HasPrefix(k, "AWS::") {
			fail("parameters."+k, "not a parameter the kit may set (AWS:: parameters are filled in by AWS IoT)")
			continue
		}
		for _, m := range placeholder.FindAllString(c.Parameters[k], -1) {
			if _, ok := placeholders[m]; !ok {
				fail("parameters."+k, "unknown placeholder %s: want {serial}, {hostname} or {mac}", m)
			}
		}
	}
	return errors.Join(errs...)
}
