//go:build mosquitto

package provision

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/provemu"
	"github.com/kitd-dev/kitd/publisher"
)

// The claim client may reach the two provisioning topic pairs only, as
// deploy/aws/claim-policy.json allows on AWS; the emulator plays the
// service; a provisioned kit (any certificate, by client id) gets its own
// kits/<thing>/ topics.
const fleetACL = `user claim
topic write $aws/certificates/create-from-csr/json
topic read $aws/certificates/create-from-csr/json/+
topic write $aws/provisioning-templates/kitd-fleet/provision/json
topic read $aws/provisioning-templates/kitd-fleet/provision/json/+

user provemu
topic readwrite $aws/certificates/#
topic readwrite $aws/provisioning-templates/#

pattern readwrite kits/%c/#
`

// Onboarding through a real Mosquitto with mutual TLS and an ACL as tight
// as the claim policy, then connecting and publishing as the thing.
func TestOnboardThroughMosquitto(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{ACL: fleetACL, Devices: []string{"claim", "provemu"}})
	emuTLS, err := b.CA.ClientTLS(b.Certs["provemu"])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emu, err := provemu.Start(ctx, b.URL, emuTLS, "provemu", provemu.Options{CA: b.CA})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	emu.AddTemplate(provemu.Template{Name: "kitd-fleet", Required: []string{"SerialNumber"},
		ThingName: func(p map[string]string) string { return "kit-" + p["SerialNumber"] }})

	m := publisher.DefaultConfig()
	m.Broker, m.CAFile = b.URL, b.CA.CAFile
	cfg := DefaultConfig()
	cfg.Template = "kitd-fleet"
	cfg.ClaimCertFile, cfg.ClaimKeyFile = b.Certs["claim"].CertFile, b.Certs["claim"].KeyFile
	cfg.Dir = filepath.Join(t.TempDir(), "identity")
	id, err := Onboard(ctx, cfg, m, Options{Sources: fixedSources(testSerial)})
	if err != nil {
		t.Fatalf("%v\nmosquitto:\n%s", err, b.Log())
	}
	if id.ThingName != "kit-"+testSerial || emu.Issued() != 1 {
		t.Fatalf("identity %+v, %d certificates", id, emu.Issued())
	}
	m.CertFile, m.KeyFile = id.CertFile, id.KeyFile
	c, err := publisher.Dial(ctx, m, id.ThingName, nil)
	if err != nil {
		t.Fatalf("connect as the thing: %v\nmosquitto:\n%s", err, b.Log())
	}
	defer c.Close()
	if err := c.Publish(ctx, "kits/"+id.ThingName+"/telemetry", []byte(`{}`), false); err != nil {
		t.Fatal(err)
	}
}
