//go:build mosquitto

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/mosquittotest"
	"github.com/kitd-dev/kitd/internal/provemu"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/provision"
)

// fleetACL: the claim certificate reaches only the provisioning topics
// (as deploy/aws/claim-policy.json allows on AWS), the emulator plays the
// service, a provisioned kit has its own kits/<thing>/ topics by client id.
const fleetACL = `user observer
topic readwrite kits/#

user claim
topic write $aws/certificates/create-from-csr/json
topic read $aws/certificates/create-from-csr/json/+
topic write $aws/provisioning-templates/kitd-fleet/provision/json
topic read $aws/provisioning-templates/kitd-fleet/provision/json/+

user provemu
topic readwrite $aws/certificates/#
topic readwrite $aws/provisioning-templates/#

pattern readwrite kits/%c/#
`

// The kitd binary with only a claim certificate: the template refuses it
// at first (readings are kept), it is killed with SIGKILL while waiting to
// retry, and once the serial is allowed the next run registers the
// certificate the first run was issued (one certificate in all), connects
// as kit-<serial> and delivers every reading of both runs.
func TestFleetKitOnboardsAcrossKill(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{ACL: fleetACL, Devices: []string{"claim", "provemu"}})
	o := newObserver(t, b)
	emuTLS, err := b.CA.ClientTLS(b.Certs["provemu"])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emu, err := provemu.Start(ctx, b.URL, emuTLS, "provemu", provemu.Options{CA: b.CA})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	var refuse atomic.Bool
	refuse.Store(true)
	emu.AddTemplate(provemu.Template{Name: "kitd-fleet", Required: []string{"SerialNumber"},
		ThingName: func(p map[string]string) string { return "kit-" + p["SerialNumber"] },
		PreProvision: func(map[string]string) error {
			if refuse.Load() {
				return errors.New("not on the allow list yet")
			}
			return nil
		}})
	serial, err := provision.DefaultSources().Serial()
	if err != nil {
		t.Fatalf("this machine has no serial, MAC or device tree: %v", err)
	}
	thing := "kit-" + serial

	k := newKit(t, b, "unprovisioned", kitOptions{})
	idDir := filepath.Join(k.dir, "identity")
	cfg := fmt.Sprintf(`mqtt:
  broker: %s
  ca_file: %s
  keepalive: 10s
  max_publish_rate: 0
provisioning:
  template: kitd-fleet
  claim_cert_file: %s
  claim_key_file: %s
  dir: %s
buffer: { dir: %s, max_bytes: 64MiB, min_free_bytes: 1MiB }
shadow: { enabled: false, state_file: %s }
sensors:
%s`, b.URL, b.CA.CAFile, b.Certs["claim"].CertFile, b.Certs["claim"].KeyFile, idDir,
		filepath.Join(k.dir, "buffer"), filepath.Join(k.dir, "shadow.json"), simSensors(2, "100ms"))
	if err := os.WriteFile(k.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	end := k.run()
	testkit.WaitFor(t, 60*time.Second, "the template's refusal logged", func() bool {
		return strings.Contains(k.logText(), "the provisioning template refused the request")
	})
	testkit.WaitFor(t, 30*time.Second, "readings kept", func() bool { return k.bufferStats().Pending >= 20 })
	first := end(true) // kill -9
	if emu.Issued() != 1 {
		t.Fatalf("%d certificates before the kill", emu.Issued())
	}

	refuse.Store(false)
	end = k.run()
	testkit.WaitFor(t, 60*time.Second, "onboarded and delivering", func() bool {
		return len(o.missing(first.first, first.last)) == 0
	})
	second := end(false)
	assertDelivered(t, o, []lifetime{first, second})
	id, err := provision.Load(idDir)
	if err != nil || id.ThingName != thing {
		t.Fatalf("identity %+v, %v", id, err)
	}
	if n := emu.Issued(); n != 1 {
		t.Errorf("%d certificates issued, want 1: the second run registers the first run's", n)
	}
	if st, _ := os.Stat(id.KeyFile); st.Mode().Perm()&0o007 != 0 {
		t.Errorf("key file mode %04o", st.Mode().Perm())
	}
	if strings.Contains(k.logText(), "PRIVATE KEY") {
		t.Error("key material in the log")
	}
}
