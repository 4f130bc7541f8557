// Package natstest runs a real nats-server with MQTT for tests. NATS's MQTT
// needs JetStream (sessions, QoS 1 and retained messages live in streams)
// and therefore a server_name; the server listens on free loopback ports
// (never the system's 4222), keeps its store in the test's directory, and
// takes MQTT over TLS only. Logins are either certificates (verify_and_map:
// the certificate's subject, "CN=<device>", is the user) or user names
// and passwords (Options.Passwords), one kind per server: NATS's MQTT
// listener has a single TLS block.
package natstest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// Observer is the client (certificate CN, or user) allowed everything.
const Observer = "observer"

// Options configure a server.
type Options struct {
	// Devices get client certificates (CN = device id).
	Devices []string
	// Passwords, when set, make the server take user names and passwords
	// (Observer's included: ObserverPassword) instead of certificates.
	Passwords map[string]string
}

// ObserverPassword is the observer's password on a password server.
const ObserverPassword = "observer-pw"

// Broker is a running nats-server.
type Broker struct {
	t    testing.TB
	Dir  string
	Port int    // MQTT over TLS
	URL  string // tls://127.0.0.1:PORT
	CA   *pki.CA
	// Certs holds a client pair per device, plus Observer.
	Certs map[string]pki.Pair
	// Passwords is Options.Passwords plus the observer's, nil on a
	// certificate server.
	Passwords map[string]string

	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *testkit.LockedBuffer
}

// Binary finds nats-server.
func Binary() (string, error) {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server", nil
	}
	return "", errors.New("nats-server not installed (run scripts/deps.sh or apt-get install nats-server)")
}

// Start starts a server in t.TempDir() and waits until the observer can
// connect over MQTT; t.Cleanup kills it. A missing binary fails the test.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	if _, err := Binary(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca, err := pki.NewCA(filepath.Join(dir, "pki"), "natstest CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("nats", "127.0.0.1", "localhost")
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
	ports := freePorts(t, 2)
	b.Port = ports[1]
	b.URL = fmt.Sprintf("tls://127.0.0.1:%d", b.Port)
	var users []string
	tlsAuth := "verify_and_map: true"
	if opts.Passwords != nil {
		b.Passwords = map[string]string{Observer: ObserverPassword}
		for u, pw := range opts.Passwords {
			b.Passwords[u] = pw
		}
		for u, pw := range b.Passwords {
			users = append(users, fmt.Sprintf("    {user: %s, password: %s}", strconv.Quote(u), strconv.Quote(pw)))
		}
		tlsAuth = "verify: false"
	} else {
		for u := range b.Certs {
			users = append(users, fmt.Sprintf("    {user: %s}", strconv.Quote("CN="+u)))
		}
	}
	b.conf = filepath.Join(dir, "nats.conf")
	conf := fmt.Sprintf(`server_name: kitdtest
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 256MB
}
mqtt {
  listen: 127.0.0.1:%d
  tls {
    cert_file: %q
    key_file: %q
    ca_file: %q
    %s
    timeout: 5
  }
}
authorization {
  users: [
%s
  ]
}
`, ports[0], filepath.Join(dir, "js"), b.Port, srv.CertFile, srv.KeyFile, ca.CAFile, tlsAuth, strings.Join(users, "\n"))
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	t.Cleanup(b.Stop)
	return b
}

// Restart starts the server (again, with its JetStream store) and waits
// until the observer connects over MQTT.
func (b *Broker) Restart() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	bin, _ := Binary()
	b.log = &testkit.LockedBuffer{}
	cmd := exec.Command(bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start nats-server: %v", err)
	}
	b.cmd = cmd
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := b.probe()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("nats-server did not take MQTT on %s: %v\n%s", b.URL, err, b.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ObserverTLS is the TLS config the observer connects with.
func (b *Broker) ObserverTLS() (*tls.Config, error) {
	cfg, err := b.CA.ClientTLS(b.Certs[Observer])
	if err != nil {
		return nil, err
	}
	if b.Passwords != nil {
		cfg.Certificates = nil
	}
	return cfg, nil
}

// ObserverOptions are paho options for an observer connection: the
// broker, TLS and, on a password server, the observer's credentials.
func (b *Broker) ObserverOptions(clientID string) (*mqtt.ClientOptions, error) {
	tlsCfg, err := b.ObserverTLS()
	if err != nil {
		return nil, err
	}
	o := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID(clientID).SetTLSConfig(tlsCfg).
		SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second)
	if b.Passwords != nil {
		o.SetUsername(Observer).SetPassword(ObserverPassword)
	}
	return o, nil
}

func (b *Broker) probe() error {
	o, err := b.ObserverOptions(fmt.Sprintf("probe-%d", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	return testkit.ProbeMQTT(b.Addr(), o)
}

// Stop kills the server (SIGKILL: an outage). Safe to call twice.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", b.Addr(), 50*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Addr is host:port of the MQTT listener.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

// Log returns what the server printed since its last start.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log == nil {
		return ""
	}
	return b.log.String()
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out
}
