// Package rabbitmqtest runs a real RabbitMQ node with the MQTT plugin for
// tests: an isolated node (its own name, Mnesia directory, Erlang port
// mapper and distribution port, all in the caller's directory; never the
// system's rabbit@localhost on 5672), MQTT over TLS only, with mutual TLS
// logins (ssl_cert_login: the certificate's CN is the user) and password
// logins side by side, and topic permissions that keep a user to its own
// kits/USER/ topics, as a production broker would.
//
// A node takes from 5 s on an idle machine to a minute on a loaded one to
// boot (Erlang), so a test binary starts one in TestMain and shares it;
// Stop (SIGKILL: an outage) and Restart keep its data, users included.
package rabbitmqtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// Observer is the user (and certificate CN) that may read and write every
// kits/# topic.
const Observer = "observer"

// StartTimeout bounds a node's boot; generous because 2 loaded cores and
// an emulator are where CI runs.
const StartTimeout = 4 * time.Minute

// Options configure a node.
type Options struct {
	// Devices get a client certificate (CN = device id) and a user of the
	// same name, with the password Passwords[device] if set.
	Devices []string
	// Passwords of device users; a device without one logs in only with
	// its certificate.
	Passwords map[string]string
}

// Broker is a running RabbitMQ node.
type Broker struct {
	Dir  string
	Port int    // MQTT over TLS
	URL  string // tls://127.0.0.1:PORT
	CA   *pki.CA
	// Certs holds a client pair per device, plus Observer.
	Certs map[string]pki.Pair

	bin      string
	env      []string
	epmd     *exec.Cmd
	observer pki.Pair

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *testkit.LockedBuffer
}

// Binary is the rabbitmq-server script run directly, not the Debian
// wrapper in /usr/sbin, which switches to the rabbitmq user when run as
// root (that user cannot read the test's owner-only files).
func Binary() (string, error) {
	for _, p := range []string{"/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/sbin/rabbitmq-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("rabbitmq-server not installed (run scripts/deps.sh or apt-get install rabbitmq-server)")
}

// Start boots a node in dir (which must exist and be empty) and waits
// until its MQTT listener accepts the observer. Close stops it.
func Start(dir string, opts Options) (*Broker, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("epmd"); err != nil {
		return nil, fmt.Errorf("epmd (erlang-base) not installed: %w", err)
	}
	ca, err := pki.NewCA(filepath.Join(dir, "pki"), "rabbitmqtest CA")
	if err != nil {
		return nil, err
	}
	srv, err := ca.Server("rabbit", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	b := &Broker{Dir: dir, CA: ca, Certs: map[string]pki.Pair{}}
	for _, d := range append([]string{Observer}, opts.Devices...) {
		p, err := ca.Client(d, time.Time{})
		if err != nil {
			return nil, err
		}
		b.Certs[d] = p
	}
	b.observer = b.Certs[Observer]
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	b.Port = ports[0]
	b.URL = fmt.Sprintf("tls://127.0.0.1:%d", b.Port)
	defs, err := definitions(append([]string{Observer}, opts.Devices...), opts.Passwords)
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		"definitions.json": defs,
		"enabled_plugins":  "[rabbitmq_mqtt].\n",
		"env.conf":         "", // not /etc/rabbitmq/rabbitmq-env.conf
		"rabbitmq.conf": fmt.Sprintf(`listeners.tcp = none
mqtt.listeners.tcp = none
mqtt.listeners.ssl.default = 127.0.0.1:%d
ssl_options.cacertfile = %s
ssl_options.certfile = %s
ssl_options.keyfile = %s
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
ssl_options.versions.1 = tlsv1.2
ssl_options.versions.2 = tlsv1.3
mqtt.ssl_cert_login = true
ssl_cert_login_from = common_name
mqtt.allow_anonymous = false
mqtt.vhost = /
mqtt.exchange = amq.topic
load_definitions = %s
log.console = true
log.console.level = warning
log.file = false
`, b.Port, ca.CAFile, srv.CertFile, srv.KeyFile, filepath.Join(dir, "definitions.json")),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	epmdPort, distPort := ports[1], ports[2]
	b.env = append(os.Environ(),
		"HOME="+dir, // the Erlang cookie
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "env.conf"),
		"RABBITMQ_NODENAME=kitdtest@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", distPort),
		fmt.Sprintf("ERL_EPMD_PORT=%d", epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbit.pid"),
		"RABBITMQ_ALLOW_INPUT=",
		// The script then execs the Erlang VM instead of forking it and
		// waiting: the node keeps the script's pid, so Pdeathsig (kept
		// across exec) kills it with a test binary that dies before
		// Close (a timeout). Only the script reads the variable; the
		// node's own systemd notification needs NOTIFY_SOCKET, unset.
		"RUNNING_UNDER_SYSTEMD=true",
		"NOTIFY_SOCKET=",
	)
	// Our own port mapper, in the foreground, so it is ours to stop: the
	// node would otherwise start a daemon that outlives the test.
	b.epmd = exec.Command("epmd", "-port", fmt.Sprint(epmdPort), "-address", "127.0.0.1")
	b.epmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.epmd.Start(); err != nil {
		return nil, fmt.Errorf("start epmd: %w", err)
	}
	if err := waitListen(fmt.Sprintf("127.0.0.1:%d", epmdPort), 10*time.Second); err != nil {
		b.Close()
		return nil, fmt.Errorf("epmd: %w", err)
	}
	b.bin = bin
	if err := b.Restart(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Restart boots the node (again: the data survives a Stop) and waits until
// the observer can connect over MQTT.
func (b *Broker) Restart() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return nil
	}
	b.log = &testkit.LockedBuffer{}
	cmd := exec.Command(b.bin)
	cmd.Env = b.env
	cmd.Dir = b.Dir
	cmd.Stdout, cmd.Stderr = b.log, b.log
	// Its own process group, to kill the whole node (the script, erl,
	// beam.smp and its helpers) at once; and gone with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start rabbitmq-server: %w", err)
	}
	b.cmd = cmd
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	b.exited = exited
	deadline := time.Now().Add(StartTimeout)
	for {
		select {
		case <-exited:
			b.cmd = nil
			return fmt.Errorf("rabbitmq-server exited while starting:\n%s", b.log.String())
		default:
		}
		if err := b.probe(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			b.kill()
			return fmt.Errorf("rabbitmq-server did not accept MQTT on %s within %s (%v):\n%s", b.URL, StartTimeout, err, b.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// probe connects as the observer.
func (b *Broker) probe() error {
	tlsCfg, err := b.CA.ClientTLS(b.observer)
	if err != nil {
		return err
	}
	o := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID(fmt.Sprintf("probe-%d", time.Now().UnixNano())).
		SetTLSConfig(tlsCfg).SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second)
	return testkit.ProbeMQTT(b.Addr(), o)
}

// Stop kills the node (SIGKILL to its process group: an outage, not a
// clean shutdown). It is safe to call twice.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kill()
}

func (b *Broker) kill() {
	if b.cmd == nil {
		return
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	<-b.exited
	b.cmd = nil
	// Gone only when nothing listens any more.
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", b.Addr(), 50*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops the node and its port mapper.
func (b *Broker) Close() {
	b.Stop()
	if b.epmd != nil && b.epmd.Process != nil {
		_ = syscall.Kill(-b.epmd.Process.Pid, syscall.SIGKILL)
		_ = b.epmd.Wait()
	}
}

// Addr is host:port of the MQTT listener.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

// Log returns what the node printed since its last start.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log == nil {
		return ""
	}
	return b.log.String()
}

// definitions is the node's users, permissions and topic permissions:
// every user may use the vhost, a device may publish only to its own
// kits/USER/ routing keys (the MQTT plugin maps / to .), the observer
// everywhere.
func definitions(users []string, passwords map[string]string) (string, error) {
	type user struct {
		Name      string `json:"name"`
		Hash      string `json:"password_hash"`
		Algorithm string `json:"hashing_algorithm"`
		Tags      string `json:"tags"`
	}
	type perm struct {
		User      string `json:"user"`
		Vhost     string `json:"vhost"`
		Configure string `json:"configure"`
		Write     string `json:"write"`
		Read      string `json:"read"`
	}
	type topicPerm struct {
		User     string `json:"user"`
		Vhost    string `json:"vhost"`
		Exchange string `json:"exchange"`
		Write    string `json:"write"`
		Read     string `json:"read"`
	}
	var d struct {
		Users       []user      `json:"users"`
		Vhosts      []any       `json:"vhosts"`
		Permissions []perm      `json:"permissions"`
		TopicPerms  []topicPerm `json:"topic_permissions"`
	}
	d.Vhosts = []any{map[string]string{"name": "/"}}
	for _, u := range users {
		h := ""
		if pw, ok := passwords[u]; ok {
			var err error
			if h, err = passwordHash(pw); err != nil {
				return "", err
			}
		}
		d.Users = append(d.Users, user{Name: u, Hash: h, Algorithm: "rabbit_password_hashing_sha256"})
		d.Permissions = append(d.Permissions, perm{User: u, Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"})
		if u != Observer {
			d.TopicPerms = append(d.TopicPerms, topicPerm{User: u, Vhost: "/", Exchange: "amq.topic",
				Write: `^kits\.{username}\.`, Read: `^kits\.{username}\.`})
		}
	}
	out, err := json.Marshal(d)
	return string(out), err
}

// passwordHash is RabbitMQ's rabbit_password_hashing_sha256 form:
// base64(salt ++ sha256(salt ++ password)) with a 4-byte salt.
func passwordHash(pw string) (string, error) {
	salt := make([]byte, 4)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(append([]byte{}, salt...), pw...))
	return base64.StdEncoding.EncodeToString(append(salt, sum[:]...)), nil
}

func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func waitListen(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
