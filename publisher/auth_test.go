package publisher

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kitd-dev/kitd/internal/testkit"
)

const secret = "s3cr3t-Pa55"

func writePassword(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasswordFileRules(t *testing.T) {
	for _, c := range []struct {
		name, content string
		mode          os.FileMode
		want          string // "" = valid
	}{
		{"plain", secret, 0o600, ""},
		{"trailing newline", secret + "\n", 0o640, ""},
		{"CRLF", secret + "\r\n", 0o600, ""},
		{"readable by others", secret, 0o644, "readable by others"},
		{"writable by group", secret, 0o660, "writable by its group or others"},
		{"empty", "", 0o600, "is empty"},
		{"only a newline", "\n", 0o600, "is empty"},
		{"two lines", secret + "\nsecond\n", 0o600, "more than one line"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ca, _ := tlsTestFiles(t)
			cfg := DefaultConfig()
			cfg.Broker = "tls://broker.example:8883"
			cfg.CAFile = ca.CAFile
			cfg.Username = "kit-1"
			cfg.PasswordFile = writePassword(t, c.content, c.mode)
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				pw, err := readPassword(cfg.PasswordFile)
				if err != nil || string(pw) != secret {
					t.Fatalf("password %q, %v", pw, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "password_file: ") {
				t.Fatalf("error %v, want password_file: ...%s", err, c.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "second") {
				t.Fatalf("the error quotes the password: %v", err)
			}
		})
	}
	t.Run("not a regular file", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Broker, cfg.Username, cfg.PasswordFile = "tls://b:8883", "u", t.TempDir()
		if err := cfg.ValidateFiles(); err == nil || !strings.Contains(err.Error(), "password_file: ") {
			t.Fatalf("a directory as password_file: %v", err)
		}
	})
}

func TestCredentialSettings(t *testing.T) {
	ca, pair := tlsTestFiles(t)
	pw := writePassword(t, secret, 0o600)
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"user and password, no client certificate", func(c *Config) { c.Username, c.PasswordFile = "kit", pw }, ""},
		{"user, password and client certificate", func(c *Config) {
			c.Username, c.PasswordFile, c.CertFile, c.KeyFile = "kit", pw, pair.CertFile, pair.KeyFile
		}, ""},
		{"user alone", func(c *Config) { c.Username = "kit" }, ""},
		{"password without user", func(c *Config) { c.PasswordFile = pw; c.CertFile, c.KeyFile = pair.CertFile, pair.KeyFile }, "password_file: needs mqtt.username"},
		{"password over tcp", func(c *Config) { c.Broker, c.Username, c.PasswordFile = "tcp://127.0.0.1:1883", "kit", pw }, "password_file: would be sent in the clear"},
		{"no user, no certificate", func(*Config) {}, "cert_file: required for a TLS broker"},
		{"user with a certificate but no key", func(c *Config) { c.Username, c.CertFile = "kit", pair.CertFile }, "key_file: required"},
		{"user with NUL", func(c *Config) { c.Username = "a\x00b" }, "username: must be UTF-8 without NUL"},
		{"user info in the URL", func(c *Config) { c.Broker = "tls://kit:" + secret + "@b:8883" }, "broker: user info in the URL is not used: set mqtt.username"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Broker = "tls://broker.example:8883"
			cfg.CAFile = ca.CAFile
			c.edit(&cfg)
			for _, v := range []func() error{cfg.Validate, cfg.ValidateSettings} {
				err := v()
				if c.want == "" && err != nil {
					t.Fatal(err)
				}
				if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
					t.Fatalf("error %v, want %q", err, c.want)
				}
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Fatalf("the error quotes the password: %v", err)
				}
			}
		})
	}
}

// passwordHook admits a client whose user name and password match the
// current ones, and remembers every password it was offered.
type passwordHook struct {
	mqtt.HookBase
	mu      sync.Mutex
	want    string
	offered []string
}

func (h *passwordHook) ID() string { return "password" }
func (h *passwordHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}
func (h *passwordHook) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offered = append(h.offered, string(pk.Connect.Password))
	return string(pk.Connect.Username) == "kit-user" && string(pk.Connect.Password) == h.want
}
func (h *passwordHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (h *passwordHook) set(pw string) {
	h.mu.Lock()
	h.want = pw
	h.mu.Unlock()
}

func (h *passwordHook) lastOffered() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.offered) == 0 {
		return ""
	}
	return h.offered[len(h.offered)-1]
}

// The password goes in CONNECT, a wrong one is named (and never logged),
// and a rotated file is read at the next connect without a restart.
func TestUserAndPasswordFile(t *testing.T) {
	hook := &passwordHook{want: "old-" + secret}
	broker := testkit.StartBroker(t, hook)
	pair := broker.Client(kit)
	pwFile := writePassword(t, "wrong\n", 0o600)
	cfg := DefaultConfig()
	cfg.Broker = broker.URL
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = broker.CA.CAFile, pair.CertFile, pair.KeyFile
	cfg.Username, cfg.PasswordFile = "kit-user", pwFile
	buf := openBuffer(t)
	r := startPublisher(t, cfg, buf, testOptions())
	testkit.WaitFor(t, 20*time.Second, "a refused connect", func() bool {
		return strings.Contains(r.p.Stats().LastError, ErrNotAuthorized.Error())
	})
	if e := r.p.Stats().LastError; !strings.Contains(e, `the broker refused user "kit-user" (check mqtt.username and the password in mqtt.password_file `+pwFile) {
		t.Errorf("refusal: %s", e)
	}
	// Rotate: write the right password; the next attempt uses it.
	if err := os.WriteFile(pwFile, []byte("old-"+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "connected with the password from the file", func() bool { return r.p.Stats().Connected })
	if got := hook.lastOffered(); got != "old-"+secret {
		t.Fatalf("offered %q", got)
	}
	// The broker changes the password and drops the kit; the file follows.
	hook.set(secret)
	if err := os.WriteFile(pwFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cl := range broker.Server.Clients.GetAll() {
		if string(cl.Properties.Username) == "kit-user" {
			cl.Stop(errors.New("kicked by the test"))
		}
	}
	seqs := appendReadings(t, buf, "air", 5)
	testkit.WaitFor(t, 20*time.Second, "delivered after the rotation", func() bool { return r.p.Stats().Delivered >= int64(len(seqs)) })
	if got := hook.lastOffered(); got != secret {
		t.Fatalf("offered %q after the rotation", got)
	}
	r.stop(t)
	for _, pw := range []string{secret, "old-" + secret, "wrong"} {
		if r.log.count(pw) != 0 {
			t.Fatalf("the log holds a password:\n%s", r.log.String())
		}
	}
}
