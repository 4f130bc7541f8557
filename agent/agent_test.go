package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/sim"
	"github.com/kitd-dev/kitd/systemd"
)

// notifySocket plays systemd: it collects what the agent sends to
// NOTIFY_SOCKET.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "agn") // socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &notifySocket{path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	return s
}

// mark sends a datagram to the socket and waits until it was read: the
// socket is read in order, so everything sent before is counted then.
func (s *notifySocket) mark(t *testing.T) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := s.count("TEST_MARK=")
	if _, err := c.Write([]byte(fmt.Sprintf("TEST_MARK=%d", n+1))); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the test's own datagram", func() bool { return s.count("TEST_MARK=") == n+1 })
}

func (s *notifySocket) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func (s *notifySocket) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.msgs, "|")
}

// offlineConfig is a kit whose broker is down: offline is a normal state,
// and everything but delivery must work in it.
func offlineConfig(t *testing.T, interval string) (string, *config.Config) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	yaml := fmt.Sprintf(`device: { id: kit-001 }
mqtt: { broker: "tcp://%s" }
buffer: { dir: %s, max_bytes: 16MiB, min_free_bytes: 1MiB }
shadow: { enabled: false, state_file: %s }
sensors:
  - { name: sim, driver: sim, interval: %s }
`, addr, filepath.Join(dir, "buffer"), filepath.Join(dir, "shadow.json"), interval)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

func testRegistry(t *testing.T) *sensors.Registry {
	r, err := sensors.NewRegistry(sim.Kind())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func start(t *testing.T, path string, cfg *config.Config, deps Deps) (*Agent, *testkit.LockedBuffer, func()) {
	t.Helper()
	logs := &testkit.LockedBuffer{}
	deps.ConfigFile = path
	deps.Registry = testRegistry(t)
	deps.Clock = clock.New(cfg.Clock)
	deps.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("agent did not stop:\n%s", logs)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs)
		}
	})
	return a, logs, stop
}

// READY comes while offline; the watchdog pings only while the loops go
// round: a wedged scheduler stops them, and they resume when it recovers.
func TestReadyOfflineAndWatchdogFollowsTheLoops(t *testing.T) {
	sock := listenNotify(t)
	path, cfg := offlineConfig(t, "200ms")
	var wedged atomic.Bool
	frozen := time.Now()
	a, logs, stop := start(t, path, cfg, Deps{
		Notifier:         systemd.NewNotifier(sock.path),
		WatchdogInterval: 1 * time.Second,
		StatusInterval:   200 * time.Millisecond,
		progress: func(name string, p func() time.Time) func() time.Time {
			if name != "scheduler" {
				return p
			}
			return func() time.Time {
				if wedged.Load() {
					return frozen
				}
				return p()
			}
		},
	})
	testkit.WaitFor(t, 10*time.Second, "READY=1", func() bool { return sock.count("READY=1") == 1 })
	testkit.WaitFor(t, 10*time.Second, "STATUS offline", func() bool { return strings.Contains(sock.all(), "STATUS=offline, ") })
	testkit.WaitFor(t, 10*time.Second, "watchdog pings", func() bool { return sock.count("WATCHDOG=1") >= 2 })
	testkit.WaitFor(t, 10*time.Second, "readings pending", func() bool { return a.Stats().Pending > 0 })

	wedged.Store(true)
	// The check allows maxAge (3 s here) without progress, then pings
	// stop, and the watchdog says so.
	testkit.WaitFor(t, 30*time.Second, "the watchdog to withhold pings", func() bool {
		return strings.Contains(logs.String(), "withholding pings")
	})
	// Pings sent before that may still be on their way to the reader: a
	// datagram of our own, once read, says every earlier one was.
	sock.mark(t)
	before := sock.count("WATCHDOG=1")
	time.Sleep(2 * time.Second) // two intervals for a ping that must not come
	if after := sock.count("WATCHDOG=1"); after != before {
		t.Fatalf("%d pings while the scheduler was wedged", after-before)
	}
	wedged.Store(false)
	testkit.WaitFor(t, 10*time.Second, "pings to resume", func() bool { return sock.count("WATCHDOG=1") > before })

	stop()
	testkit.WaitFor(t, 5*time.Second, "STOPPING=1", func() bool { return sock.count("STOPPING=1") == 1 })
}

// A reload with a broken file keeps the running config; a good one
// applies, restarting only what changed.
func TestReload(t *testing.T) {
	sock := listenNotify(t)
	path, cfg := offlineConfig(t, "1s")
	a, logs, _ := start(t, path, cfg, Deps{Notifier: systemd.NewNotifier(sock.path)})
	testkit.WaitFor(t, 10*time.Second, "READY=1", func() bool { return sock.count("READY=1") == 1 })

	good, _ := os.ReadFile(path)
	os.WriteFile(path, []byte("device: { id: \"\" }\nbogus: 1\n"), 0o600)
	err := a.Reload()
	if err == nil || !strings.Contains(err.Error(), "reload refused") || !strings.Contains(err.Error(), "device.id") && !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("bad reload not refused clearly: %v\n%s", err, logs)
	}
	testkit.WaitFor(t, 5*time.Second, "RELOADING=1 then READY=1", func() bool {
		return strings.HasSuffix(sock.all(), "READY=1") && strings.Contains(sock.all(), "RELOADING=1")
	})
	if h := a.sched.Load().v.Health(); len(h) != 1 || h[0].Interval != time.Second {
		t.Fatalf("running sensors changed by a refused reload: %+v", h)
	}

	os.WriteFile(path, bytes.Replace(good, []byte("interval: 1s"), []byte("interval: 250ms"), 1), 0o600)
	pubBefore := a.pub.Load()
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if h := a.sched.Load().v.Health(); len(h) != 1 || h[0].Interval != 250*time.Millisecond {
		t.Fatalf("interval not reloaded: %+v", h)
	}
	if a.pub.Load() != pubBefore {
		t.Fatal("the connection was restarted although nothing it depends on changed")
	}
}

// The STATUS line names the reasons of what was lost, unused seqs aside
// (they were never a reading).
func TestLossDetail(t *testing.T) {
	for _, c := range []struct {
		lost map[string]int64
		want string
	}{
		{nil, ""},
		{map[string]int64{"full": 0, "unused": 4000}, ""},
		{map[string]int64{"full": 4127, "corrupt": 0, "discarded": 3, "unused": 9}, " (full 4127, discarded 3)"},
		{map[string]int64{"torn": 1, "corrupt": 2}, " (corrupt 2, torn 1)"},
	} {
		if got := lossDetail(c.lost); got != c.want {
			t.Errorf("lossDetail(%v) = %q, want %q", c.lost, got, c.want)
		}
	}
}

// A reload that fails while building (here: the key file replaced by one
// that does not match the certificate between the config check and the
// publisher's build, as a renewal racing the reload does) swaps nothing:
// the sensors it would have changed keep their settings, and delivery goes
// on over the running connection.
func TestFailedReloadLeavesDeliveryRunning(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	pair := b.Client("kit-001")
	dir := t.TempDir()
	yaml := fmt.Sprintf(`device: { id: kit-001 }
mqtt: { broker: "%s", ca_file: %s, cert_file: %s, key_file: %s, max_publish_rate: 0 }
buffer: { dir: %s, max_bytes: 16MiB, min_free_bytes: 1MiB }
shadow: { enabled: false, state_file: %s }
sensors:
  - { name: sim, driver: sim, interval: 100ms }
`, b.URL, b.CA.CAFile, pair.CertFile, pair.KeyFile, filepath.Join(dir, "buffer"), filepath.Join(dir, "shadow.json"))
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := b.Client("someone-else") // a key that does not match the kit's certificate
	var swapKey atomic.Bool
	a, logs, _ := start(t, path, cfg, Deps{beforeBuild: func(part string) {
		if part == "delivery" && swapKey.Load() {
			key, err := os.ReadFile(other.KeyFile)
			if err != nil {
				t.Error(err)
				return
			}
			os.WriteFile(pair.KeyFile, key, 0o600)
		}
	}})
	testkit.WaitFor(t, 10*time.Second, "delivery", func() bool { return a.Stats().Delivered >= 5 })
	pubBefore, schedBefore := a.pub.Load(), a.sched.Load()

	// Both a sensor and the connection change; the connection's build
	// then finds a key that does not match.
	swapKey.Store(true)
	changed := strings.Replace(yaml, "interval: 100ms", "interval: 1s", 1)
	changed = strings.Replace(changed, "max_publish_rate: 0", "max_publish_rate: 0, keepalive: 20s", 1)
	os.WriteFile(path, []byte(changed), 0o600)
	err = a.Reload()
	if err == nil || !strings.Contains(err.Error(), "reload refused") || !strings.Contains(err.Error(), "connection") {
		t.Fatalf("reload with a mismatched key: %v\n%s", err, logs)
	}
	if a.pub.Load() != pubBefore || a.sched.Load() != schedBefore {
		t.Fatal("a failed reload swapped running parts")
	}
	if h := a.sched.Load().v.Health(); h[0].Interval != 100*time.Millisecond {
		t.Fatalf("a failed reload changed the sensors: %+v", h)
	}
	delivered := a.Stats().Delivered
	testkit.WaitFor(t, 10*time.Second, "delivery after the failed reload", func() bool {
		return a.Stats().Delivered >= delivered+10 && a.Stats().Connected
	})
}

// The whole stop is bounded: a part that never finishes (here the shutdown
// is wedged before it starts) cannot keep Run from returning, and the error
// says so.
func TestStopIsBounded(t *testing.T) {
	path, cfg := offlineConfig(t, "1s")
	cfg.MQTT.ShutdownTimeout = 500 * time.Millisecond
	wedge := make(chan struct{})
	defer close(wedge)
	deps := Deps{ConfigFile: path, Registry: testRegistry(t), Clock: clock.New(cfg.Clock), beforeBuild: func(part string) {
		if part == "shutdown" {
			<-wedge
		}
	}}
	a, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testkit.WaitFor(t, 10*time.Second, "a reading", func() bool { return a.Stats().Pending > 0 })
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not finish within 5.5s") {
			t.Fatalf("Run after a wedged stop: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return although its stop is bounded")
	}
}
