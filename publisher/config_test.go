package publisher

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/datasize"
	"github.com/kitd-dev/kitd/internal/pki"
)

// tlsTestFiles makes a CA and a client pair in a temp dir.
func tlsTestFiles(t *testing.T) (*pki.CA, pki.Pair) {
	t.Helper()
	ca, err := pki.NewCA(filepath.Join(t.TempDir(), "pki"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Client("kit-1", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return ca, p
}

func validTLSConfig(t *testing.T) Config {
	ca, p := tlsTestFiles(t)
	c := DefaultConfig()
	c.Broker = "tls://broker.example:8883"
	c.CAFile, c.CertFile, c.KeyFile = ca.CAFile, p.CertFile, p.KeyFile
	return c
}

func TestDefaultConfigWithFilesIsValid(t *testing.T) {
	if err := validTLSConfig(t).Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Broker = "tcp://127.0.0.1:1883"
	if err := c.Validate(); err != nil {
		t.Fatalf("tcp:// needs no files: %v", err)
	}
}

var fieldKey = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)*: `)

func TestValidateRejects(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	notPEM := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, other := tlsTestFiles(t)
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"empty broker", func(c *Config) { c.Broker = "" }, "broker: required"},
		{"unknown scheme", func(c *Config) { c.Broker = "http://x:80" }, "broker: \"http://x:80\": scheme must be"},
		{"websocket scheme", func(c *Config) { c.Broker = "wss://x" }, "broker: "},
		{"no host", func(c *Config) { c.Broker = "tls://:8883" }, "broker: \"tls://:8883\": missing host"},
		{"bad port", func(c *Config) { c.Broker = "tls://x:99999" }, "broker: \"tls://x:99999\": port must be"},
		{"path", func(c *Config) { c.Broker = "tls://x:8883/mqtt" }, "no path or query"},
		{"alpn on tcp", func(c *Config) { c.Broker, c.ALPN = "tcp://x:1883", true }, "alpn: needs a TLS broker"},
		{"no ca", func(c *Config) { c.CAFile = "" }, "ca_file: required for a TLS broker"},
		{"missing ca", func(c *Config) { c.CAFile = missing }, "ca_file: open " + missing + ": no such file or directory"},
		{"ca not PEM", func(c *Config) { c.CAFile = notPEM }, "ca_file: " + notPEM + ": no PEM certificate in it"},
		{"missing cert", func(c *Config) { c.CertFile = missing }, "cert_file: open " + missing},
		{"cert not PEM", func(c *Config) { c.CertFile = notPEM }, "cert_file: " + notPEM + ": no PEM certificate"},
		{"no key", func(c *Config) { c.KeyFile = "" }, "key_file: required"},
		{"missing key", func(c *Config) { c.KeyFile = missing }, "key_file: open " + missing},
		{"key not PEM", func(c *Config) { c.KeyFile = notPEM }, "key_file: " + notPEM + ": no PEM private key in it"},
		{"key of another cert", func(c *Config) { c.KeyFile = other.KeyFile }, "key_file: " + other.KeyFile + " does not match the certificate in "},
		{"keepalive zero", func(c *Config) { c.Keepalive = 0 }, "keepalive: must be positive"},
		{"keepalive sub-second", func(c *Config) { c.Keepalive = time.Millisecond }, "keepalive: must be at least 1s"},
		{"telemetry topic empty", func(c *Config) { c.TelemetryTopic = "" }, "telemetry_topic: must not be empty"},
		{"telemetry wildcard", func(c *Config) { c.TelemetryTopic = "kits/+/t" }, "telemetry_topic: \"kits/+/t\": wildcards"},
		{"status on $aws", func(c *Config) { c.StatusTopic = "$aws/things/{device}/shadow/update" }, "status_topic: AWS IoT ignores a Last Will"},
		{"inflight zero", func(c *Config) { c.MaxInflight = 0 }, "max_inflight: must be between 1 and 100"},
		{"inflight over AWS", func(c *Config) { c.MaxInflight = 101 }, "max_inflight: must be between 1 and 100"},
		{"negative rate", func(c *Config) { c.MaxPublishRate = -1 }, "max_publish_rate: must not be negative"},
		{"batch zero", func(c *Config) { c.Batch.MaxReadings = 0 }, "batch.max_readings: must be between 1 and 1000, got 0"},
		{"batch too many", func(c *Config) { c.Batch.MaxReadings = 1001 }, "batch.max_readings: must be between 1 and 1000"},
		{"batch bytes over AWS", func(c *Config) { c.Batch.MaxBytes = 129 * datasize.KiB }, "batch.max_bytes: must be at most 128KiB"},
		{"batch bytes tiny", func(c *Config) { c.Batch.MaxBytes = 10 }, "batch.max_bytes: must be at least 1KiB"},
		{"connect timeout", func(c *Config) { c.ConnectTimeout = 0 }, "connect_timeout: must be positive"},
		{"ack timeout", func(c *Config) { c.AckTimeout = -time.Second }, "ack_timeout: must not be negative"},
		{"shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown_timeout: must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validTLSConfig(t)
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("accepted; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !fieldKey.MatchString(line) {
					t.Errorf("error line %q does not start with a field key", line)
				}
			}
		})
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	c := DefaultConfig()
	c.Broker = "tls://x"
	c.MaxInflight = 0
	c.Keepalive = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"ca_file:", "cert_file:", "key_file:", "max_inflight:", "keepalive:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %q", want, err)
		}
	}
}

func TestKeyFileMode(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		want string // "" = accepted
	}{
		{0o600, ""},
		{0o640, ""}, // the service's group may read it
		{0o644, "is readable by others (mode 0644): chmod 0640 it"},
		{0o604, "is readable by others (mode 0604)"},
		{0o642, "is writable by others (mode 0642)"},
		{0o660, "is writable by its group or others (mode 0660)"},
		{0o620, "is writable by its group or others (mode 0620)"},
	} {
		c := validTLSConfig(t)
		if err := os.Chmod(c.KeyFile, tc.mode); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("mode %04o refused: %v", tc.mode, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "key_file: "+c.KeyFile+" "+tc.want)):
			t.Errorf("mode %04o: got %v, want %q", tc.mode, err, tc.want)
		}
	}
}

// Every TLS file must be a regular file of sane size that only its owner
// can change: a FIFO would hang config check, /dev/zero would fill memory,
// a group-writable CA lets the group pick the server the kit trusts.
func TestTLSFileTypeSizeAndMode(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.pem")
	if err := os.WriteFile(huge, make([]byte, maxPEMBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ca fifo", func(c *Config) { c.CAFile = fifo }, "ca_file: " + fifo + " is a named pipe (FIFO), not a regular file"},
		{"cert fifo", func(c *Config) { c.CertFile = fifo }, "cert_file: " + fifo + " is a named pipe (FIFO), not a regular file"},
		{"key fifo", func(c *Config) { c.KeyFile = fifo }, "key_file: " + fifo + " is a named pipe (FIFO), not a regular file"},
		{"ca /dev/zero", func(c *Config) { c.CAFile = "/dev/zero" }, "ca_file: /dev/zero is a character device, not a regular file"},
		{"key /dev/zero", func(c *Config) { c.KeyFile = "/dev/zero" }, "key_file: /dev/zero is a character device, not a regular file"},
		{"ca directory", func(c *Config) { c.CAFile = dir }, "ca_file: " + dir + " is a directory, not a regular file"},
		{"ca too large", func(c *Config) { c.CAFile = huge }, "ca_file: " + huge + " is larger than 1048576 bytes"},
		{"ca group-writable", func(c *Config) { chmod(t, c.CAFile, 0o664) }, " is writable by its group or others (mode 0664)"},
		{"ca world-writable", func(c *Config) { chmod(t, c.CAFile, 0o646) }, " is writable by its group or others (mode 0646)"},
		{"cert group-writable", func(c *Config) { chmod(t, c.CertFile, 0o664) }, " is writable by its group or others (mode 0664)"},
		{"key group-writable", func(c *Config) { chmod(t, c.KeyFile, 0o660) }, " is writable by its group or others (mode 0660)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validTLSConfig(t)
			tc.edit(&c)
			done := make(chan error, 1)
			go func() { done <- c.Validate() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("Validate still blocked after a minute")
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// The field names the file it refuses.
	c := validTLSConfig(t)
	chmod(t, c.CAFile, 0o664)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ca_file: "+c.CAFile+" is writable") {
		t.Fatalf("got %v", err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// A key that does not parse must not be quoted back: the error goes to
// logs and terminals.
func TestKeyNeverInErrors(t *testing.T) {
	c := validTLSConfig(t)
	data, err := os.ReadFile(c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Join(strings.Split(strings.TrimSpace(string(data)), "\n")[1:], "")
	body = strings.TrimSuffix(body, "-----END PRIVATE KEY-----")
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the DER so every parser fails, but keep it PEM.
	raw[len(raw)/2] ^= 0xff
	raw = raw[:len(raw)-3]
	corrupt := "-----BEGIN PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString(raw) + "\n-----END PRIVATE KEY-----\n"
	if err := os.WriteFile(c.KeyFile, []byte(corrupt), 0o600); err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "key_file: "+c.KeyFile+": PRIVATE KEY block is not a PKCS#1, PKCS#8 or EC private key") {
		t.Fatalf("corrupt key accepted or unnamed: %v", err)
	}
	msg := err.Error()
	enc := base64.StdEncoding.EncodeToString(raw)
	for i := 0; i+12 <= len(enc); i += 4 {
		if strings.Contains(msg, enc[i:i+12]) {
			t.Fatalf("error quotes the key: %s", msg)
		}
	}
	for i := 0; i+6 <= len(raw); i++ {
		if strings.Contains(msg, string(raw[i:i+6])) {
			t.Fatalf("error quotes key bytes: %q", msg)
		}
	}
}

func TestBrokerDefaults(t *testing.T) {
	for _, tc := range []struct {
		url  string
		alpn bool
		addr string
	}{
		{"tls://h", false, "h:8883"},
		{"ssl://h", true, "h:443"},
		{"mqtts://h:9000", false, "h:9000"},
		{"tcp://h", false, "h:1883"},
		{"TLS://[::1]:8883", false, "[::1]:8883"},
	} {
		b, err := parseBroker(tc.url, tc.alpn)
		if err != nil || b.addr != tc.addr {
			t.Errorf("%s: %+v %v, want %s", tc.url, b, err, tc.addr)
		}
	}
}

func TestAckTimeoutDefault(t *testing.T) {
	c := DefaultConfig()
	if got := c.ackTimeout(); got != 60*time.Second {
		t.Fatalf("keepalive 30s: ack timeout %v, want 60s", got)
	}
	c.Keepalive = 5 * time.Second
	if got := c.ackTimeout(); got != 20*time.Second {
		t.Fatalf("keepalive 5s: ack timeout %v, want 20s", got)
	}
	c.AckTimeout = 3 * time.Second
	if got := c.ackTimeout(); got != 3*time.Second {
		t.Fatalf("explicit: %v", got)
	}
}

// Validate is ValidateSettings and ValidateFiles: the settings half reads
// no file, the files half checks nothing else.
func TestValidateSettingsAndFilesSplit(t *testing.T) {
	c := validTLSConfig(t)
	c.CAFile, c.CertFile = "/nonexistent/ca.pem", "/nonexistent/cert.pem"
	if err := c.ValidateSettings(); err != nil {
		t.Errorf("ValidateSettings read a file: %v", err)
	}
	for _, v := range []func() error{c.Validate, c.ValidateFiles} {
		if err := v(); err == nil || !strings.Contains(err.Error(), "ca_file: ") || !strings.Contains(err.Error(), "cert_file: ") {
			t.Errorf("missing files: %v", err)
		}
	}
	c = validTLSConfig(t)
	c.Keepalive, c.KeyFile = 0, ""
	err := c.ValidateSettings()
	if err == nil || !strings.Contains(err.Error(), "keepalive: must be positive") || !strings.Contains(err.Error(), "key_file: required for a TLS broker") {
		t.Errorf("ValidateSettings: %v", err)
	}
	c.KeyFile = validTLSConfig(t).KeyFile
	if err := c.ValidateFiles(); err == nil || !strings.Contains(err.Error(), "key_file: ") || strings.Contains(err.Error(), "keepalive") {
		t.Errorf("ValidateFiles of another CA's key: %v, want only the key mismatch", err)
	}
	c.Broker = "tcp://127.0.0.1:1883"
	if err := c.ValidateFiles(); err != nil {
		t.Errorf("ValidateFiles for tcp://: %v", err)
	}
}
