package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/provemu"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/provision"
)

// fleetConfig is a kit with only a claim certificate, a broker with the
// provisioning emulator, and a switch for the template's refusal.
func fleetConfig(t *testing.T, broker string) (path string, emu *provemu.Emulator, refuse *atomic.Bool) {
	t.Helper()
	b := testkit.StartBroker(t, nil)
	claim := b.Client("claim")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emu, err := provemu.Start(ctx, b.URL, b.ClientTLS("provemu"), "provemu", provemu.Options{CA: b.CA})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	refuse = &atomic.Bool{}
	emu.AddTemplate(provemu.Template{
		Name: "kitd-fleet", Required: []string{"SerialNumber"},
		ThingName: func(p map[string]string) string { return "kit-" + p["SerialNumber"] },
		PreProvision: func(p map[string]string) error {
			if refuse.Load() {
				return errors.New("serial " + p["SerialNumber"] + " is not on the allow list")
			}
			return nil
		},
	})
	if broker == "" {
		broker = b.URL
	}
	dir := t.TempDir()
	path = writeConfig(t, fmt.Sprintf(`mqtt:
  broker: %s
  ca_file: %s
buffer: { dir: %s }
shadow: { state_file: %s }
provisioning:
  template: kitd-fleet
  claim_cert_file: %s
  claim_key_file: %s
  parameters: { SerialNumber: "{serial}" }
  dir: %s
sensors:
  - { name: sim, driver: sim, interval: 1s }
`, broker, b.CA.CAFile, filepath.Join(dir, "buffer"), filepath.Join(dir, "shadow.json"), claim.CertFile, claim.KeyFile, filepath.Join(dir, "identity")))
	return path, emu, refuse
}

func TestProvisionAndIdentityCommands(t *testing.T) {
	path, emu, _ := fleetConfig(t, "")
	// The board's own serial, as the command reads it.
	serial, err := provision.DefaultSources().Serial()
	if err != nil {
		t.Fatalf("this machine has no serial, MAC or device tree: %v", err)
	}
	thing := "kit-" + serial

	r := kitd(t, nil, nil, "identity", "-c", path)
	if r.code != 0 || !strings.Contains(r.stdout, "identity:    claim") || !strings.Contains(r.stdout, "not onboarded") {
		t.Fatalf("identity before onboarding: %+v", r)
	}
	r = kitd(t, nil, nil, "config", "check", "-c", path)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "# identity in effect: claim certificate") {
		t.Fatalf("config check before onboarding: %+v", r)
	}

	r = kitd(t, nil, nil, "provision", "-c", path)
	if r.code != 0 || r.stdout != thing+"\n" {
		t.Fatalf("provision: %+v; want %q on stdout, exit 0", r, thing)
	}
	if strings.Contains(r.stderr, "PRIVATE KEY") {
		t.Error("key material on stderr")
	}
	r = kitd(t, nil, nil, "identity", "-c", path)
	if r.code != 0 || !strings.Contains(r.stdout, "thing:       "+thing) || !strings.Contains(r.stdout, "identity:    own") ||
		!strings.Contains(r.stdout, "serial:") || !strings.Contains(r.stdout, "expires:") {
		t.Fatalf("identity after onboarding: %+v", r)
	}
	r = kitd(t, nil, nil, "config", "check", "-c", path)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "# identity in effect: own: thing "+thing) || strings.Contains(r.stdout, "PRIVATE KEY") {
		t.Fatalf("config check after onboarding: %+v", r)
	}
	// Again: the identity is there; nothing new is asked of AWS.
	r = kitd(t, nil, nil, "provision", "-c", path)
	if r.code != 0 || r.stdout != thing+"\n" || emu.Issued() != 1 {
		t.Fatalf("second provision: %+v, %d certificates", r, emu.Issued())
	}
}

func TestProvisionFailuresExit1WithTheReason(t *testing.T) {
	path, _, refuse := fleetConfig(t, "")
	refuse.Store(true)
	r := kitd(t, nil, nil, "provision", "-c", path)
	if r.code != 1 || !strings.Contains(r.stderr, "the provisioning template refused the request: 403 AccessDenied") {
		t.Fatalf("refused template: %+v", r)
	}
	path, _, _ = fleetConfig(t, "tls://127.0.0.1:1")
	r = kitd(t, nil, nil, "provision", "-c", path)
	if r.code != 1 || !strings.Contains(r.stderr, "connect with the claim certificate") {
		t.Fatalf("unreachable broker: %+v", r)
	}
	r = kitd(t, nil, nil, "provision", "-c", writeConfig(t, validConfig(t)))
	if r.code != 2 || !strings.Contains(r.stderr, "provisioning.template: not set") {
		t.Fatalf("no provisioning section: %+v", r)
	}
	body := validConfig(t) + "provisioning: { template: kitd-fleet, claim_cert_file: /x.pem, claim_key_file: /x.key }\n"
	r = kitd(t, nil, nil, "provision", "-c", writeConfig(t, body))
	if r.code != 2 || !strings.Contains(r.stderr, "mqtt.cert_file and mqtt.key_file are set") {
		t.Fatalf("provisioning beside configured certificate files: %+v", r)
	}
}

func TestDemoProvision(t *testing.T) {
	r := kitd(t, nil, nil, "demo", "--provision", "--for", "5s")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	for _, want := range []string{"starts unprovisioned", "issued from the kit's CSR", `thing demo-kit registered by template "kitd-demo"`, "reading  sim   seq=1 "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("want %q in the demo's output:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "done: 0 readings delivered") || !strings.Contains(r.stdout, "readings delivered") {
		t.Errorf("nothing delivered:\n%s", r.stdout)
	}
}
