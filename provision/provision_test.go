package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/provemu"
	"github.com/kitd-dev/kitd/publisher"
)

// childEnv makes the test binary a kit that onboards once and is killed
// with SIGKILL at a failpoint: a real crash, not a returned error.
const childEnv = "KITD_PROVISION_CHILD"

type childSpec struct {
	Cfg    Config
	MQTT   publisher.Config
	Serial string
	Kill   string
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(child(spec))
	}
	os.Exit(m.Run())
}

func child(spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := Onboard(ctx, s.Cfg, s.MQTT, Options{
		Sources: fixedSources(s.Serial),
		Failpoint: func(name string) error {
			if name == s.Kill {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
			return nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(id.ThingName)
	return 0
}

func TestOnboardFreshKit(t *testing.T) {
	f := newFleet(t, fleetOptions{})
	id, err := f.onboard(t)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kit-" + testSerial; id.ThingName != want {
		t.Errorf("thing name %q, want %q (from {serial})", id.ThingName, want)
	}
	if id.Claim || id.CertFile != filepath.Join(f.cfg.Dir, identityFile) || id.KeyFile != id.CertFile {
		t.Errorf("identity %+v: want the kit's own, in identity.pem", id)
	}
	if n := f.emu.Issued(); n != 1 {
		t.Errorf("%d certificates issued, want 1", n)
	}
	if got := f.emu.ThingCertificates(id.ThingName); len(got) != 1 || got[0] != id.CertificateID {
		t.Errorf("thing's certificates %v, want [%s]", got, id.CertificateID)
	}
	checkMode(t, id.KeyFile)
	if _, err := os.Stat(filepath.Join(f.cfg.Dir, pendingFile)); !os.IsNotExist(err) {
		t.Errorf("pending.pem left behind: %v", err)
	}
	// The new identity connects as its thing.
	f.dialAs(t, id)
	// Current agrees, and a second Onboard changes nothing.
	cur, err := Current(f.cfg)
	if err != nil || cur.ThingName != id.ThingName || cur.Serial != id.Serial {
		t.Errorf("Current = %+v, %v", cur, err)
	}
	again, err := f.onboard(t)
	if err != nil || again.Serial != id.Serial || f.emu.Issued() != 1 {
		t.Errorf("second Onboard: %+v, %v, %d issued", again, err, f.emu.Issued())
	}
	checkNoSecrets(t, "the log", f.log.String(), f.cfg.Dir)
}

func TestCurrentBeforeOnboardingIsTheClaim(t *testing.T) {
	f := newFleet(t, fleetOptions{})
	id, err := Current(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Claim || id.CertFile != f.cfg.ClaimCertFile || id.ThingName != "" || id.NotAfter.IsZero() {
		t.Errorf("Current before onboarding = %+v, want the claim certificate", id)
	}
}

// TestOnboardKilledAtEveryStep kills a kit process with SIGKILL at each
// gap between onboarding's durable steps; the next start finishes with the
// same key and one certificate. Killed after AWS registered the
// certificate but before the reply was written, the next start registers
// again with the same token; only a service that refuses a token used once
// makes it fall back to a second certificate (docs/aws.md: revoke the
// first).
func TestOnboardKilledAtEveryStep(t *testing.T) {
	for _, tc := range []struct {
		fp        string
		singleUse bool
		want      int // certificates issued in all
	}{
		{FPAfterKey, false, 1},
		{FPAfterCertificate, false, 1},
		{FPBeforeIdentity, false, 1},
		{FPBeforeIdentity, true, 2},
		{FPAfterIdentity, false, 1},
	} {
		name := tc.fp
		if tc.singleUse {
			name += "/single-use-tokens"
		}
		t.Run(name, func(t *testing.T) {
			f := newFleet(t, fleetOptions{singleUse: tc.singleUse})
			spec, _ := json.Marshal(childSpec{Cfg: f.cfg, MQTT: f.mqtt, Serial: testSerial, Kill: tc.fp})
			cmd := selfCommand(t, "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: want killed by SIGKILL at %s, got %v\n%s", tc.fp, err, out)
			}
			var keyBefore []byte
			if s, err := readState(filepath.Join(f.cfg.Dir, pendingFile)); err == nil {
				keyBefore = s.keyDER
			}
			id, err := f.onboard(t)
			if err != nil {
				t.Fatalf("next start: %v\n%s", err, f.log.String())
			}
			if id.ThingName != "kit-"+testSerial {
				t.Errorf("thing %q", id.ThingName)
			}
			if n := f.emu.Issued(); n != tc.want {
				t.Errorf("%d certificates issued in all, want %d", n, tc.want)
			}
			if got := f.emu.ThingCertificates(id.ThingName); got[len(got)-1] != id.CertificateID {
				t.Errorf("kit uses %s, thing has %v", id.CertificateID, got)
			}
			if keyBefore != nil {
				s, err := readState(id.KeyFile)
				if err != nil || string(s.keyDER) != string(keyBefore) {
					t.Errorf("the key made before the crash was not reused")
				}
			}
			checkMode(t, id.KeyFile)
			f.dialAs(t, id)
		})
	}
}

func TestTemplateRefusalKeepsTheCertificateForTheRetry(t *testing.T) {
	f := newFleet(t, fleetOptions{refuse: testSerial})
	_, err := f.onboard(t)
	var rej *RejectedError
	if !errors.As(err, &rej) || rej.StatusCode != 403 || !strings.Contains(err.Error(), "template refused") {
		t.Fatalf("want the template's refusal, got %v", err)
	}
	if _, err := Load(f.cfg.Dir); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("identity after a refusal: %v", err)
	}
	// Once the fleet's owner allows the serial, the retry registers the
	// certificate already issued.
	f.emu.AddTemplate(provemu.Template{Name: "kitd-fleet", ThingName: func(p map[string]string) string { return "kit-" + p["SerialNumber"] }})
	id, err := f.onboard(t)
	if err != nil {
		t.Fatal(err)
	}
	if f.emu.Issued() != 1 || id.ThingName != "kit-"+testSerial {
		t.Errorf("after the retry: %d certificates, thing %q", f.emu.Issued(), id.ThingName)
	}
}

func TestExpiredTokenGetsANewCertificateForTheSameKey(t *testing.T) {
	f := newFleet(t, fleetOptions{})
	now := time.Now()
	f.opts.Now = func() time.Time { return now }
	f.opts.Failpoint = func(name string) error {
		if name == FPAfterCertificate {
			return errors.New("stop")
		}
		return nil
	}
	if _, err := f.onboard(t); err == nil {
		t.Fatal("failpoint did not stop onboarding")
	}
	f.opts.Failpoint = nil
	f.opts.Now = func() time.Time { return now.Add(2 * time.Hour) }
	id, err := f.onboard(t)
	if err != nil {
		t.Fatal(err)
	}
	if f.emu.Issued() != 2 || len(f.emu.ThingCertificates(id.ThingName)) != 1 {
		t.Errorf("%d issued, thing has %v: want a second certificate, the first never registered", f.emu.Issued(), f.emu.ThingCertificates(id.ThingName))
	}
}

func TestOnboardUnreachableBroker(t *testing.T) {
	f := newFleet(t, fleetOptions{})
	f.mqtt.Broker = "tls://127.0.0.1:1"
	_, err := f.onboard(t)
	if err == nil || !strings.Contains(err.Error(), "claim certificate") {
		t.Fatalf("want a connect error naming the claim certificate, got %v", err)
	}
}

func TestRenewal(t *testing.T) {
	f := newFleet(t, fleetOptions{validity: 10 * 24 * time.Hour})
	old, err := f.onboard(t)
	if err != nil {
		t.Fatal(err)
	}
	if !f.cfg.RenewalDue(old, time.Now()) {
		t.Fatalf("a certificate expiring in 10 days is not due with renew_before %s", f.cfg.RenewBefore)
	}
	conn := f.dialAs(t, old)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := Renew(ctx, conn, f.cfg, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if id.ThingName != old.ThingName || id.Serial == old.Serial || id.CertificateID == old.CertificateID {
		t.Errorf("renewed %+v from %+v: want the same thing, a new certificate", id, old)
	}
	if !HasPrevious(f.cfg) || !id.PreviousNotAfter.Equal(old.NotAfter) {
		t.Errorf("the old identity is not kept until the new one connects: %+v", id)
	}
	checkMode(t, filepath.Join(f.cfg.Dir, previousFile))
	checkMode(t, id.KeyFile)
	// The new one connects; then the old one goes.
	f.dialAs(t, id)
	if err := Confirm(f.cfg); err != nil {
		t.Fatal(err)
	}
	if HasPrevious(f.cfg) {
		t.Error("previous.pem kept after Confirm")
	}
	if got := f.emu.ThingCertificates(id.ThingName); len(got) != 2 {
		t.Errorf("thing's certificates %v, want the old and the new", got)
	}
	checkNoSecrets(t, "the log", f.log.String(), f.cfg.Dir)
}

func TestFailedRenewalKeepsTheOldIdentity(t *testing.T) {
	f := newFleet(t, fleetOptions{validity: 10 * 24 * time.Hour})
	old, err := f.onboard(t)
	if err != nil {
		t.Fatal(err)
	}
	f.emu.AddTemplate(provemu.Template{Name: "kitd-fleet", ThingName: func(map[string]string) string { return "x" },
		PreProvision: func(map[string]string) error { return errors.New("fleet frozen") }})
	conn := f.dialAs(t, old)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := Renew(ctx, conn, f.cfg, f.opts); err == nil {
		t.Fatal("renewal against a refusing template succeeded")
	}
	cur, err := Load(f.cfg.Dir)
	if err != nil || cur.Serial != old.Serial || HasPrevious(f.cfg) {
		t.Fatalf("after a failed renewal: %+v, %v, previous %t", cur, err, HasPrevious(f.cfg))
	}
	conn.Close()
	f.dialAs(t, cur) // still works

	// A template that answers with another thing: refused too.
	f.emu.AddTemplate(provemu.Template{Name: "kitd-fleet", ThingName: func(map[string]string) string { return "someone-else" }})
	conn = f.dialAs(t, cur)
	if _, err := Renew(ctx, conn, f.cfg, f.opts); !errors.Is(err, ErrThingChanged) {
		t.Fatalf("want ErrThingChanged, got %v", err)
	}
	if cur2, _ := Load(f.cfg.Dir); cur2.Serial != old.Serial {
		t.Error("identity changed by a renewal for another thing")
	}
}

func TestRestoreGoesBackToThePrevious(t *testing.T) {
	f := newFleet(t, fleetOptions{validity: 10 * 24 * time.Hour})
	old, err := f.onboard(t)
	if err != nil {
		t.Fatal(err)
	}
	conn := f.dialAs(t, old)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := Renew(ctx, conn, f.cfg, f.opts); err != nil {
		t.Fatal(err)
	}
	if err := Restore(f.cfg); err != nil {
		t.Fatal(err)
	}
	cur, err := Load(f.cfg.Dir)
	if err != nil || cur.Serial != old.Serial || HasPrevious(f.cfg) {
		t.Fatalf("after Restore: %+v, %v", cur, err)
	}
}

// selfCommand runs this test binary again; under qemu (make test-arm sets
// KITD_TEST_EMULATED and KITD_TEST_QEMU, binfmt is not registered) through
// the same emulator. A SIGKILL the child sends itself ends the emulator.
func selfCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if os.Getenv("KITD_TEST_EMULATED") == "" {
		return exec.Command(os.Args[0], args...)
	}
	qemu := os.Getenv("KITD_TEST_QEMU")
	if qemu == "" {
		t.Fatal("KITD_TEST_EMULATED is set but KITD_TEST_QEMU does not name the emulator")
	}
	return exec.Command(qemu, append([]string{os.Args[0]}, args...)...)
}
