package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kitd-dev/kitd/provision"
	"github.com/kitd-dev/kitd/publisher"
)

// provisioned reports whether the identity may come from provisioning:
// then device.id, mqtt.cert_file and mqtt.key_file may be left empty.
func (c *Config) provisioned() bool {
	return c.Provisioning.Enabled() && c.MQTT.CertFile == "" && c.MQTT.KeyFile == ""
}

// Identity is the identity in effect: with provisioning (and mqtt's
// cert_file and key_file left empty), the kit's own from
// provisioning.dir, else the claim certificate (Claim set; the kit must
// onboard before it can deliver). Without provisioning, device.id and the
// mqtt files, as configured.
func (c *Config) Identity() (provision.Identity, error) {
	if !c.provisioned() {
		return provision.Identity{ThingName: c.Device.ID, CertFile: c.MQTT.CertFile, KeyFile: c.MQTT.KeyFile}, nil
	}
	id, err := provision.Current(c.Provisioning)
	if err != nil {
		return id, fmt.Errorf("provisioning.dir: %w", err)
	}
	return id, nil
}

// WithIdentity is c with the provisioned identity filled in (device.id,
// mqtt.cert_file and mqtt.key_file), ok false while the kit has none yet.
// A config without provisioning is returned as it is.
func (c *Config) WithIdentity() (out *Config, ok bool, err error) {
	if !c.provisioned() {
		return c, true, nil
	}
	id, err := c.Identity()
	if err != nil || id.Claim {
		return c, false, err
	}
	cp := *c
	cp.Device.ID = id.ThingName
	cp.MQTT.CertFile, cp.MQTT.KeyFile = id.CertFile, id.KeyFile
	return &cp, true, nil
}

// mqttToValidate is the mqtt section as it will connect: with the
// provisioned identity's file, or before onboarding the claim
// certificate's, whose errors then name provisioning.claim_cert_file and
// claim_key_file.
func (c *Config) mqttToValidate(files bool) (publisher.Config, func(error) []error) {
	plain := func(err error) []error { return prefixed("mqtt.", err) }
	m := c.MQTT
	if !c.provisioned() {
		return m, plain
	}
	if files {
		if id, err := provision.Load(c.Provisioning.Dir); err == nil {
			m.CertFile, m.KeyFile = id.CertFile, id.KeyFile
			return m, plain
		} else if !errors.Is(err, provision.ErrNoIdentity) {
			return m, func(error) []error { return []error{fmt.Errorf("provisioning.dir: %w", err)} }
		}
	}
	// A missing claim file is provisioning's own check's to report.
	missing := c.Provisioning.ClaimCertFile == "" || c.Provisioning.ClaimKeyFile == ""
	m.CertFile, m.KeyFile = c.Provisioning.ClaimCertFile, c.Provisioning.ClaimKeyFile
	return m, func(err error) []error {
		var out []error
		for _, e := range split(err) {
			msg := e.Error()
			switch {
			case strings.HasPrefix(msg, "cert_file: ") || strings.HasPrefix(msg, "key_file: "):
				if !missing {
					out = append(out, fmt.Errorf("provisioning.claim_%w", e))
				}
			default:
				out = append(out, fmt.Errorf("mqtt.%w", e))
			}
		}
		return out
	}
}

// keepParameterCase copies provisioning.parameters from the raw document:
// viper folds map keys to lower case, and AWS template parameters
// (SerialNumber) are case-sensitive.
func keepParameterCase(doc map[string]any, cfg *Config) {
	sec, ok := doc["provisioning"].(map[string]any)
	if !ok {
		return
	}
	params, ok := sec["parameters"].(map[string]any)
	if !ok {
		return
	}
	out := make(map[string]string, len(params))
	for k, v := range params {
		if v == nil {
			v = ""
		}
		out[k] = fmt.Sprint(v)
	}
	cfg.Provisioning.Parameters = out
}

// UsesProvisioning reports whether the identity comes from provisioning
// (a template set, mqtt.cert_file and key_file left empty).
func (c *Config) UsesProvisioning() bool { return c.provisioned() }
