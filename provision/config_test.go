package provision

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("provisioning off: %v", err)
	}
	c := DefaultConfig()
	c.Template = "kitd fleet!"
	c.Dir = "relative"
	c.RenewBefore = time.Minute
	c.Parameters = map[string]string{"SerialNumber": "{serial}", "Site": "{site}", "AWS::IoT::Certificate::Id": "x"}
	err := c.Validate()
	for _, want := range []string{"template:", "claim_cert_file: required", "claim_key_file: required", "dir: \"relative\"",
		"renew_before: must be at least 1h", "parameters.Site: unknown placeholder {site}", "parameters.AWS::IoT::Certificate::Id:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func TestSerialSources(t *testing.T) {
	dir := t.TempDir()
	dt := filepath.Join(dir, "serial-number")
	cpu := filepath.Join(dir, "cpuinfo")
	none := func() (string, error) { return "", errors.New("none") }
	s := Sources{
		DeviceTreeSerial: func() (string, error) { return readTrimmed(dt) },
		CPUInfoSerial:    func() (string, error) { return cpuinfoSerial(cpu) },
		MAC:              func() (string, error) { return "b8:27:eb:12:34:56", nil },
		Hostname:         func() (string, error) { return "kitpi", nil },
	}
	if v, err := s.Serial(); err != nil || v != "b827eb123456" {
		t.Errorf("with only a MAC: %q, %v", v, err)
	}
	os.WriteFile(cpu, []byte("processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 00000000abcdef01\nModel\t: Pi\n"), 0o644)
	if v, err := s.Serial(); err != nil || v != "00000000abcdef01" {
		t.Errorf("cpuinfo: %q, %v", v, err)
	}
	os.WriteFile(dt, []byte("10000000deadbeef\x00"), 0o644)
	if v, err := s.Serial(); err != nil || v != "10000000deadbeef" {
		t.Errorf("device tree: %q, %v", v, err)
	}
	got, err := s.Expand(map[string]string{"SerialNumber": "{serial}", "Name": "{hostname}-{mac}", "Fixed": "lab"})
	if err != nil || got["SerialNumber"] != "10000000deadbeef" || got["Name"] != "kitpi-b8:27:eb:12:34:56" || got["Fixed"] != "lab" {
		t.Errorf("Expand = %v, %v", got, err)
	}
	s = Sources{DeviceTreeSerial: none, CPUInfoSerial: none, MAC: none, Hostname: none}
	if _, err := s.Expand(map[string]string{"SerialNumber": "{serial}"}); !errors.Is(err, ErrNoSerial) || !strings.Contains(err.Error(), "parameters.SerialNumber") {
		t.Errorf("no serial: %v", err)
	}
	if id := ClaimClientID(fixedSources("ab/c d")); id != "claim-ab-c-d" {
		t.Errorf("ClaimClientID = %q", id)
	}
}

func TestBrokenIdentityFileIsNamed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, identityFile)
	os.WriteFile(path, []byte("-----BEGIN KITD IDENTITY-----\nThing-Name: kit-1\n\n-----END KITD IDENTITY-----\n"), 0o640)
	if _, err := Load(dir); !errors.Is(err, ErrBadIdentity) || !strings.Contains(err.Error(), path) {
		t.Errorf("want ErrBadIdentity naming %s, got %v", path, err)
	}
	os.Chmod(path, 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a world-readable identity file: %v", err)
	}
}
