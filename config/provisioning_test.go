package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// provisioningYAML turns the fixture into a kit that onboards itself: no
// device.id, no certificate of its own, a claim certificate.
func provisioningYAML(t *testing.T, claimCert, claimKey string) (string, string) {
	yaml, dir, _ := fixture(t)
	var out []string
	for _, l := range strings.Split(yaml, "\n") {
		if strings.HasPrefix(l, "  id: ") || strings.HasPrefix(l, "  cert_file: ") || strings.HasPrefix(l, "  key_file: ") {
			continue
		}
		out = append(out, l)
	}
	return strings.Replace(strings.Join(out, "\n"), "device:\n", "", 1) + `
provisioning:
  template: kitd-fleet
  claim_cert_file: ` + claimCert + `
  claim_key_file: ` + claimKey + `
  parameters: { SerialNumber: "{serial}", Site: "lab-{hostname}" }
  dir: ` + filepath.Join(dir, "identity") + `
`, dir
}

func TestProvisioningConfig(t *testing.T) {
	_, _, claim := fixture(t)
	yaml, dir := provisioningYAML(t, claim.CertFile, claim.KeyFile)
	cfg, err := load(t, yaml)
	if err != nil {
		t.Fatalf("a kit with only a claim certificate: %v", err)
	}
	p := cfg.Provisioning
	if p.Parameters["SerialNumber"] != "{serial}" || p.Parameters["Site"] != "lab-{hostname}" {
		t.Errorf("parameters %v: want their names as written (AWS's are case-sensitive)", p.Parameters)
	}
	if p.RenewBefore.Hours() != 720 || p.Dir != filepath.Join(dir, "identity") {
		t.Errorf("defaults: %+v", p)
	}
	id, err := cfg.Identity()
	if err != nil || !id.Claim || id.CertFile != claim.CertFile {
		t.Errorf("identity before onboarding: %+v, %v", id, err)
	}
	if _, ok, err := cfg.WithIdentity(); ok || err != nil {
		t.Errorf("WithIdentity before onboarding: ok %t, %v", ok, err)
	}
}

func TestProvisioningConfigErrorsNameTheField(t *testing.T) {
	_, _, claim := fixture(t)
	yaml, _ := provisioningYAML(t, claim.CertFile, filepath.Join(t.TempDir(), "missing.key"))
	_, err := load(t, yaml)
	if err == nil || !strings.Contains(err.Error(), "provisioning.claim_key_file: ") {
		t.Fatalf("want an error naming provisioning.claim_key_file, got %v", err)
	}
	if strings.Contains(err.Error(), "mqtt.key_file") || strings.Contains(err.Error(), "device.id") {
		t.Errorf("errors for fields provisioning fills in: %v", err)
	}
	yaml, _ = provisioningYAML(t, "", "")
	_, err = load(t, strings.Replace(yaml, "template: kitd-fleet", "template: kitd fleet", 1))
	for _, want := range []string{"provisioning.template: ", "provisioning.claim_cert_file: required", "provisioning.claim_key_file: required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}
