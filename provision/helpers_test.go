package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/provemu"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/publisher"
)

const testSerial = "00000000c0ffee42"

// fleet is a broker with the provisioning emulator and a claim certificate.
type fleet struct {
	broker *testkit.Broker
	emu    *provemu.Emulator
	cfg    Config
	mqtt   publisher.Config
	opts   Options
	log    *testkit.LockedBuffer
}

type fleetOptions struct {
	validity time.Duration
	refuse   string // a serial the pre-provisioning check refuses
	// singleUse: the service refuses a token used once (provemu.Options).
	singleUse bool
}

func newFleet(t *testing.T, fo fleetOptions) *fleet {
	t.Helper()
	b := testkit.StartBroker(t, nil)
	claim := b.Client("claim")
	emuPair := b.Client("provemu")
	tlsCfg, err := b.CA.ClientTLS(emuPair)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emu, err := provemu.Start(ctx, b.URL, tlsCfg, "provemu", provemu.Options{CA: b.CA, Validity: fo.validity, SingleUseTokens: fo.singleUse})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	emu.AddTemplate(provemu.Template{
		Name:      "kitd-fleet",
		Required:  []string{"SerialNumber"},
		ThingName: func(p map[string]string) string { return "kit-" + p["SerialNumber"] },
		PreProvision: func(p map[string]string) error {
			if fo.refuse != "" && p["SerialNumber"] == fo.refuse {
				return errors.New("serial " + p["SerialNumber"] + " is not on the allow list")
			}
			return nil
		},
	})
	m := publisher.DefaultConfig()
	m.Broker, m.CAFile = b.URL, b.CA.CAFile
	m.ConnectTimeout = 10 * time.Second
	cfg := DefaultConfig()
	cfg.Template = "kitd-fleet"
	cfg.ClaimCertFile, cfg.ClaimKeyFile = claim.CertFile, claim.KeyFile
	cfg.Dir = filepath.Join(t.TempDir(), "identity")
	log := &testkit.LockedBuffer{}
	return &fleet{broker: b, emu: emu, cfg: cfg, mqtt: m, log: log, opts: Options{
		Log:     testLogger(log),
		Sources: fixedSources(testSerial),
	}}
}

func fixedSources(serial string) Sources {
	return Sources{
		DeviceTreeSerial: func() (string, error) { return serial, nil },
		CPUInfoSerial:    func() (string, error) { return "", errors.New("none") },
		MAC:              func() (string, error) { return "b8:27:eb:00:00:01", nil },
		Hostname:         func() (string, error) { return "kitpi", nil },
	}
}

func (f *fleet) onboard(t *testing.T) (Identity, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Onboard(ctx, f.cfg, f.mqtt, f.opts)
}

// dialAs connects with id's files as its thing, as the publisher would.
func (f *fleet) dialAs(t *testing.T, id Identity) *publisher.OneShot {
	t.Helper()
	m := f.mqtt
	m.CertFile, m.KeyFile = id.CertFile, id.KeyFile
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := publisher.Dial(ctx, m, id.ThingName, nil)
	if err != nil {
		t.Fatalf("connect as %s: %v", id.ThingName, err)
	}
	t.Cleanup(c.Close)
	return c
}

// checkNoSecrets fails if text holds key material or a token.
func checkNoSecrets(t *testing.T, what, text string, dir string) {
	t.Helper()
	if strings.Contains(text, "PRIVATE KEY") {
		t.Errorf("%s holds a private key", what)
	}
	for _, name := range []string{identityFile, pendingFile, previousFile} {
		s, err := readState(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		if tok := s.headers["Ownership-Token"]; tok != "" && strings.Contains(text, tok) {
			t.Errorf("%s holds the ownership token", what)
		}
		if len(s.keyDER) > 0 && strings.Contains(text, fmt.Sprintf("%x", s.keyDER[len(s.keyDER)-16:])) {
			t.Errorf("%s holds key bytes", what)
		}
	}
}

func checkMode(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m&0o007 != 0 || m != fileMode {
		t.Errorf("%s: mode %04o, want %04o (never readable by others)", path, m, fileMode)
	}
}
