package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/internal/provemu"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/provision"
	"github.com/kitd-dev/kitd/publisher"
)

const kitSerial = "00000000feed0001"

// fleetKit is an unprovisioned kit (claim certificate only) beside a
// broker that plays AWS IoT: the provisioning emulator, its auth hook, and
// a recorder of telemetry.
type fleetKit struct {
	broker *testkit.Broker
	hook   *provemu.AuthHook
	emu    *provemu.Emulator
	path   string
	cfg    *config.Config

	mu      sync.Mutex
	devices map[string][]uint64 // device → seqs received
	refuse  bool
}

func newFleetKit(t *testing.T, validity time.Duration) *fleetKit {
	t.Helper()
	k := &fleetKit{hook: &provemu.AuthHook{}, devices: map[string][]uint64{}}
	k.broker = testkit.StartBroker(t, k.hook)
	claim := k.broker.Client("claim")
	emuTLS := k.broker.ClientTLS("provemu")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emu, err := provemu.Start(ctx, k.broker.URL, emuTLS, "provemu", provemu.Options{CA: k.broker.CA, Validity: validity})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	k.emu = emu
	k.hook.Attach(emu)
	emu.AddTemplate(provemu.Template{
		Name: "kitd-fleet", Required: []string{"SerialNumber"},
		ThingName: func(p map[string]string) string { return "kit-" + p["SerialNumber"] },
		PreProvision: func(p map[string]string) error {
			k.mu.Lock()
			defer k.mu.Unlock()
			if k.refuse {
				return errors.New("serial not on the allow list")
			}
			return nil
		},
	})
	if err := k.broker.Server.Subscribe("kits/+/telemetry", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		var m struct {
			Device string `json:"device"`
			Seq    uint64 `json:"seq"`
		}
		if json.Unmarshal(pk.Payload, &m) == nil && m.Seq > 0 {
			k.mu.Lock()
			k.devices[m.Device] = append(k.devices[m.Device], m.Seq)
			k.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	yaml := fmt.Sprintf(`mqtt:
  broker: %s
  ca_file: %s
  max_publish_rate: 0
buffer: { dir: %s, max_bytes: 16MiB, min_free_bytes: 1MiB }
shadow: { enabled: false, state_file: %s }
provisioning:
  template: kitd-fleet
  claim_cert_file: %s
  claim_key_file: %s
  dir: %s
sensors:
  - { name: sim, driver: sim, interval: 100ms }
`, k.broker.URL, k.broker.CA.CAFile, filepath.Join(dir, "buffer"), filepath.Join(dir, "shadow.json"),
		claim.CertFile, claim.KeyFile, filepath.Join(dir, "identity"))
	k.path = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(k.path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	k.cfg, err = config.Check(k.path, nil, testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *fleetKit) seqs(device string) []uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]uint64(nil), k.devices[device]...)
}

// run starts the agent with the kit's serial and short retry timings.
func (k *fleetKit) run(t *testing.T) (*Agent, *testkit.LockedBuffer) {
	t.Helper()
	logs := &testkit.LockedBuffer{}
	a, err := New(k.cfg, Deps{
		ConfigFile: k.path, Registry: testRegistry(t), Clock: clock.New(k.cfg.Clock),
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	a.ident.sources = provision.Sources{
		DeviceTreeSerial: func() (string, error) { return kitSerial, nil },
	}
	a.ident.retryMin, a.ident.retryMax = 100*time.Millisecond, 400*time.Millisecond
	a.ident.renewRetryMin = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent did not stop")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs)
		}
		checkNoKeyMaterial(t, logs.String(), k.cfg.Provisioning.Dir)
	})
	return a, logs
}

func checkNoKeyMaterial(t *testing.T, logs, dir string) {
	t.Helper()
	if strings.Contains(logs, "PRIVATE KEY") || strings.Contains(logs, "Ownership-Token") {
		t.Error("key material or a token in the log")
	}
	b, err := os.ReadFile(filepath.Join(dir, "identity.pem"))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) >= 40 && strings.Contains(logs, line) {
			t.Errorf("a line of identity.pem is in the log")
			return
		}
	}
}

// A kit with only the claim certificate collects from the start, is
// refused by the template for a while (clear error, backoff, readings
// kept), then onboards, reconnects as its thing and delivers the backlog
// it took before, under the thing name from {serial}.
func TestAgentOnboardsAndDeliversTheBacklog(t *testing.T) {
	k := newFleetKit(t, 0)
	k.refuse = true
	a, logs := k.run(t)
	thing := "kit-" + kitSerial
	testkit.WaitFor(t, 60*time.Second, "two refusals by the template, logged", func() bool {
		return strings.Count(logs.String(), "the provisioning template refused the request") >= 2
	})
	testkit.WaitFor(t, 30*time.Second, "readings kept while not onboarded", func() bool { return a.Stats().Pending >= 10 })
	if a.Stats().Connected || len(k.seqs(thing)) > 0 {
		t.Fatal("delivered before onboarding")
	}
	k.mu.Lock()
	k.refuse = false
	k.mu.Unlock()
	testkit.WaitFor(t, 60*time.Second, "the backlog from seq 1 delivered as "+thing, func() bool {
		s := k.seqs(thing)
		return len(s) > 10 && contains(s, 1)
	})
	if n := k.emu.Issued(); n != 1 {
		t.Errorf("%d certificates issued, want 1 (the refusal's retry reuses it)", n)
	}
	id, err := provision.Load(k.cfg.Provisioning.Dir)
	if err != nil || id.ThingName != thing {
		t.Fatalf("identity %+v, %v", id, err)
	}
	for _, c := range k.hook.Connections() {
		if c.ClientID == thing && c.Serial != id.Serial {
			t.Errorf("connected as %s with certificate %s, want %s", thing, c.Serial, id.Serial)
		}
	}
	if st, _ := os.Stat(id.KeyFile); st.Mode().Perm()&0o007 != 0 {
		t.Errorf("key file mode %04o", st.Mode().Perm())
	}
}

// A provisioned kit whose certificate expires within renew_before renews
// it over its own connection, reconnects with the new one, then drops the
// old; the shadow state shows both expiries while both are kept.
func TestAgentRenewsItsCertificate(t *testing.T) {
	k := newFleetKit(t, 10*24*time.Hour) // inside renew_before (720h)
	// Onboarded before: a certificate that is due; the renewed one will
	// not be.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := provision.Onboard(ctx, k.cfg.Provisioning, k.cfg.MQTT, provision.Options{
		Sources: provision.Sources{DeviceTreeSerial: func() (string, error) { return kitSerial, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	k.emu.SetValidity(365 * 24 * time.Hour)
	a, logs := k.run(t)
	thing := "kit-" + kitSerial
	testkit.WaitFor(t, 60*time.Second, "a renewed certificate in use and the old one dropped", func() bool {
		id, err := provision.Load(k.cfg.Provisioning.Dir)
		if err != nil || id.Serial == first.Serial || provision.HasPrevious(k.cfg.Provisioning) {
			return false
		}
		for _, c := range k.hook.Connections() {
			if c.ClientID == thing && c.Serial == id.Serial && !c.Refused {
				return true
			}
		}
		return false
	})
	if !strings.Contains(logs.String(), "certificate renewed") {
		t.Error("renewal not logged")
	}
	if got := k.emu.ThingCertificates(thing); len(got) != 2 {
		t.Errorf("thing's certificates %v, want 2", got)
	}
	n := len(k.seqs(thing))
	testkit.WaitFor(t, 30*time.Second, "delivery goes on with the new certificate", func() bool { return len(k.seqs(thing)) > n+5 })
	if a.Stats().Pending > 1000 {
		t.Errorf("backlog growing: %d", a.Stats().Pending)
	}
}

func contains(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A renewal the template refuses keeps the old certificate in use:
// delivery goes on, the refusal is logged and retried with backoff, and
// the retries reuse the one certificate already issued for the new key.
func TestAgentFailedRenewalKeepsDelivering(t *testing.T) {
	k := newFleetKit(t, 10*24*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := provision.Onboard(ctx, k.cfg.Provisioning, k.cfg.MQTT, provision.Options{
		Sources: provision.Sources{DeviceTreeSerial: func() (string, error) { return kitSerial, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	k.refuse = true
	k.mu.Unlock()
	_, logs := k.run(t)
	thing := "kit-" + kitSerial
	testkit.WaitFor(t, 60*time.Second, "three refused renewals", func() bool {
		return strings.Count(logs.String(), "certificate renewal failed; the current certificate stays in use") >= 3
	})
	n := len(k.seqs(thing))
	testkit.WaitFor(t, 30*time.Second, "delivery going on with the old certificate", func() bool { return len(k.seqs(thing)) > n+5 })
	cur, err := provision.Load(k.cfg.Provisioning.Dir)
	if err != nil || cur.Serial != first.Serial || provision.HasPrevious(k.cfg.Provisioning) {
		t.Fatalf("identity changed by a refused renewal: %+v, %v", cur, err)
	}
	if got := k.emu.Issued(); got != 2 {
		t.Errorf("%d certificates issued, want 2 (the first, and one for the new key, reused by every retry)", got)
	}
}

// A renewed certificate the broker refuses (three connects in a row)
// sends the kit back to the previous one, which still works; renewal is
// then paused rather than retried at every connection.
func TestAgentGoesBackWhenTheRenewedCertificateIsRefused(t *testing.T) {
	k := newFleetKit(t, 10*24*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := provision.Onboard(ctx, k.cfg.Provisioning, k.cfg.MQTT, provision.Options{
		Sources: provision.Sources{DeviceTreeSerial: func() (string, error) { return kitSerial, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	thing := "kit-" + kitSerial
	deny := func(c provemu.Connection) bool { return c.ClientID == thing && c.Serial != first.Serial }
	k.hook.Deny.Store(&deny)
	_, logs := k.run(t)
	testkit.WaitFor(t, 60*time.Second, "back to the previous certificate", func() bool {
		return strings.Contains(logs.String(), "back to the previous one")
	})
	n := len(k.seqs(thing))
	testkit.WaitFor(t, 60*time.Second, "delivery with the previous certificate", func() bool { return len(k.seqs(thing)) > n+5 })
	cur, err := provision.Load(k.cfg.Provisioning.Dir)
	if err != nil || cur.Serial != first.Serial || provision.HasPrevious(k.cfg.Provisioning) {
		t.Fatalf("after the refusal: %+v, %v (previous kept %t)", cur, err, provision.HasPrevious(k.cfg.Provisioning))
	}
	if !strings.Contains(logs.String(), "renewal due but paused") {
		t.Error("renewal not paused after the refusal")
	}
	if got := k.emu.Issued(); got != 2 {
		t.Errorf("%d certificates issued, want 2", got)
	}
}

// Restarted after a renewal whose certificate never connected, and the
// broker refuses it: the kit still goes back to the previous one.
func TestAgentRestartedAfterRenewalGoesBackWhenRefused(t *testing.T) {
	k := newFleetKit(t, 10*24*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := provision.Options{Sources: provision.Sources{DeviceTreeSerial: func() (string, error) { return kitSerial, nil }}}
	first, err := provision.Onboard(ctx, k.cfg.Provisioning, k.cfg.MQTT, opts)
	if err != nil {
		t.Fatal(err)
	}
	m := k.cfg.MQTT
	m.CertFile, m.KeyFile = first.CertFile, first.KeyFile
	conn, err := publisher.Dial(ctx, m, first.ThingName, nil)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := provision.Renew(ctx, conn, k.cfg.Provisioning, opts)
	conn.Close()
	if err != nil || !provision.HasPrevious(k.cfg.Provisioning) {
		t.Fatalf("renewal: %v", err)
	}
	deny := func(c provemu.Connection) bool { return c.Serial == renewed.Serial }
	k.hook.Deny.Store(&deny)
	_, logs := k.run(t)
	testkit.WaitFor(t, 60*time.Second, "back to the previous certificate", func() bool {
		return strings.Contains(logs.String(), "back to the previous one")
	})
	thing := "kit-" + kitSerial
	n := len(k.seqs(thing))
	testkit.WaitFor(t, 60*time.Second, "delivery with the previous certificate", func() bool { return len(k.seqs(thing)) > n+5 })
	if cur, err := provision.Load(k.cfg.Provisioning.Dir); err != nil || cur.Serial != first.Serial {
		t.Fatalf("identity after the refusal: %+v, %v", cur, err)
	}
}
