// Package mosquittotest runs a real Mosquitto for tests: mutual TLS with
// require_certificate and use_identity_as_username, and an ACL that gives a
// kit only its own topics, as a production broker would.
package mosquittotest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// Observer is the client name (certificate CN) allowed to read every
// kits/# topic and to act as the shadow service on $aws/things/+/shadow/#.
const Observer = "observer"

// DefaultACL gives each kit (its certificate CN, i.e. its device id) its
// own telemetry, status and shadow topics, and the observer everything.
const DefaultACL = `pattern readwrite kits/%u/#
pattern readwrite $aws/things/%u/shadow/#

user observer
topic readwrite kits/#
topic readwrite $aws/things/+/shadow/#
`

// Options configure a broker.
type Options struct {
	// ACL replaces DefaultACL.
	ACL string
	// Extra lines appended to mosquitto.conf.
	Extra string
	// Devices get client certificates (CN = device id).
	Devices []string
	// Passwords, when set, add a second TLS listener (PasswordURL) that
	// takes user names and passwords instead of client certificates, with
	// these users (hashed by mosquitto_passwd). The ACL applies to both.
	Passwords map[string]string
}

// Broker is a running Mosquitto.
type Broker struct {
	t    testing.TB
	Dir  string
	Port int
	URL  string // tls://127.0.0.1:PORT
	// PasswordURL is the user-and-password listener (Options.Passwords),
	// "" without one.
	PasswordURL string
	CA          *pki.CA
	// Certs holds a client pair per device, plus Observer.
	Certs map[string]pki.Pair

	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *testkit.LockedBuffer
	conf string
}

// Start starts a broker on a free port; it is stopped by t.Cleanup. A
// missing mosquitto binary fails the test: `make test` installs it.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		if _, err2 := os.Stat("/usr/sbin/mosquitto"); err2 != nil {
			t.Fatalf("mosquitto not installed (run scripts/deps.sh or apt-get install mosquitto): %v", err)
		}
	}
	dir := t.TempDir()
	ca, err := pki.NewCA(filepath.Join(dir, "pki"), "mosquittotest CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("server", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	b := &Broker{t: t, Dir: dir, CA: ca, Certs: map[string]pki.Pair{}}
	for _, d := range append([]string{Observer}, opts.Devices...) {
		p, err := ca.Client(d, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		b.Certs[d] = p
	}
	acl := opts.ACL
	if acl == "" {
		acl = DefaultACL
	}
	aclFile := filepath.Join(dir, "acl")
	if err := os.WriteFile(aclFile, []byte(acl), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Port = freePort(t)
	b.URL = fmt.Sprintf("tls://127.0.0.1:%d", b.Port)
	b.conf = filepath.Join(dir, "mosquitto.conf")
	// Run as root (CI), Mosquitto would drop to user mosquitto, which
	// cannot read the test's owner-only files; nobody else uses it here.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root"
	}
	extra := opts.Extra
	if opts.Passwords != nil {
		extra = passwordListener(t, b, dir, srv, opts.Passwords) + extra
	}
	conf := fmt.Sprintf(`%s
per_listener_settings false
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
allow_anonymous false
acl_file %s
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
%s
`, user, aclFile, b.Port, ca.CAFile, srv.CertFile, srv.KeyFile, extra)
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	t.Cleanup(b.Stop)
	return b
}

// passwordListener writes the password file and returns the lines of a
// listener that takes it.
func passwordListener(t testing.TB, b *Broker, dir string, srv pki.Pair, users map[string]string) string {
	t.Helper()
	pwFile := filepath.Join(dir, "passwd")
	var lines []string
	for u, pw := range users {
		lines = append(lines, u+":"+pw)
	}
	if err := os.WriteFile(pwFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// -U hashes a file of user:password lines in place.
	if out, err := exec.Command("mosquitto_passwd", "-U", pwFile).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd (package mosquitto): %v: %s", err, out)
	}
	port := freePort(t)
	b.PasswordURL = fmt.Sprintf("tls://127.0.0.1:%d", port)
	return fmt.Sprintf(`password_file %s
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate false
tls_version tlsv1.2
`, pwFile, port, b.CA.CAFile, srv.CertFile, srv.KeyFile)
}

// Pid is the running broker's process id, 0 while it is stopped;
// benchmarks read its CPU time from /proc.
func (b *Broker) Pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Addr is host:port.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

// Restart starts the broker (again) on the same port and waits until it
// accepts connections.
func (b *Broker) Restart() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	bin := "mosquitto"
	if _, err := exec.LookPath(bin); err != nil {
		bin = "/usr/sbin/mosquitto"
	}
	b.log = &testkit.LockedBuffer{}
	cmd := exec.Command(bin, "-c", b.conf)
	cmd.Stdout = b.log
	cmd.Stderr = b.log
	// A test binary killed by its timeout must not leave brokers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	b.cmd = cmd
	// Every listener, the password one too: Mosquitto opens them one
	// after the other.
	addrs := []string{b.Addr()}
	if b.PasswordURL != "" {
		addrs = append(addrs, strings.TrimPrefix(b.PasswordURL, "tls://"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		up := 0
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
				c.Close()
				up++
			}
		}
		if up == len(addrs) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("mosquitto did not listen on %s: %s", b.Addr(), b.log.String())
}

// Stop kills the broker (SIGKILL: an outage, not a clean shutdown). It is
// safe to call twice.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
	// The port is ours again only once the kernel lets go of it.
	for i := 0; i < 100; i++ {
		c, err := net.DialTimeout("tcp", b.Addr(), 50*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Log returns what the broker printed since its last start.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log == nil {
		return ""
	}
	return b.log.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
