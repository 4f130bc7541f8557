package systemd

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// The agent under systemd's protocol, end to end: the real kitd binary,
// started as systemd would start it (NOTIFY_SOCKET, WATCHDOG_USEC), with
// a broker that is down, since offline is a normal state and READY must
// not wait for it.
//
// WATCHDOG_PID is left unset: the test cannot know the child's pid before
// it starts, and an unset WATCHDOG_PID means "this process", as in
// sd_watchdog_enabled(3) and WatchdogInterval.
//
// Under qemu (make test-arm sets KITD_TEST_EMULATED and KITD_TEST_QEMU)
// the binary is built for arm like the test and run through the same
// emulator, since binfmt is not registered there.
func TestAgentSpeaksSdNotify(t *testing.T) {
	dir := t.TempDir()
	bin := buildAgent(t, dir)
	cfg := filepath.Join(dir, "kitd.yaml")
	writeConfig(t, cfg, dir, 500*time.Millisecond)

	s := listenNotify(t)
	agent := startAgent(t, bin, cfg, s.path, 2*time.Second) // pings every second
	timeout := 30 * time.Second
	if emulated() {
		timeout = 3 * time.Minute
	}

	var before []string
	s.waitFor("READY=1", timeout, &before)
	for _, m := range before {
		if strings.HasPrefix(m, "WATCHDOG=1") || strings.HasPrefix(m, "STOPPING=1") {
			t.Errorf("%q before READY=1", m)
		}
	}
	status := s.waitFor("STATUS=", timeout, nil)
	for _, word := range []string{"offline", "pending", "dropped"} {
		if !strings.Contains(status, word) {
			t.Errorf("%q lacks %q (want connected|offline, N pending, N dropped)", status, word)
		}
	}
	for range 2 {
		s.waitFor("WATCHDOG=1", timeout, nil)
	}

	// SIGHUP: a reload brackets itself with RELOADING=1 ... READY=1.
	agent.signal(syscall.SIGHUP)
	reloading := s.waitFor("RELOADING=1", timeout, nil)
	if !strings.Contains(reloading, "\nMONOTONIC_USEC=") {
		t.Errorf("%q lacks MONOTONIC_USEC", reloading)
	}
	s.waitFor("READY=1", timeout, nil)

	// An invalid config is refused, the old one kept: still READY, still
	// pinging, and the log says why, naming the field.
	if err := os.WriteFile(cfg, []byte(strings.Replace(readFile(t, cfg), "interval: 500ms", "interval: -1s", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	agent.signal(syscall.SIGHUP)
	s.waitFor("RELOADING=1", timeout, nil)
	s.waitFor("READY=1", timeout, nil)
	s.waitFor("WATCHDOG=1", timeout, nil)
	if log := agent.log(); !strings.Contains(log, "interval") {
		t.Errorf("a refused reload did not log the bad field:\n%s", log)
	}

	agent.signal(syscall.SIGTERM)
	s.waitFor("STOPPING=1", timeout, nil)
	if code := agent.wait(timeout); code != 0 {
		t.Fatalf("kitd exited %d after SIGTERM, want 0\n%s", code, agent.log())
	}
}

func emulated() bool { return os.Getenv("KITD_TEST_EMULATED") != "" }

// buildAgent builds ./cmd/kitd for the test's own GOOS/GOARCH (inherited
// from go test's environment).
func buildAgent(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "kitd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kitd")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kitd: %v\n%s", err, out)
	}
	return bin
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func writeConfig(t *testing.T, path, dir string, interval time.Duration) {
	t.Helper()
	cfg := fmt.Sprintf(`device:
  id: kit-e2e
mqtt:
  broker: tcp://127.0.0.1:%d
buffer:
  dir: %s
  max_bytes: 16MiB
  min_free_bytes: 1MiB
shadow:
  enabled: false
  state_file: %s
sensors:
  - name: sim
    driver: sim
    interval: %s
    options: { quantities: [temperature, humidity] }
`, closedPort(t), filepath.Join(dir, "buffer"), filepath.Join(dir, "shadow.json"), interval)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type agentProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  testkit.LockedBuffer
	done chan struct{}
	code int
}

func (a *agentProc) log() string { return a.out.String() }

// startAgent runs `kitd run -c cfg` as systemd would, with only the
// variables systemd sets and a clean KITD_ environment.
func startAgent(t *testing.T, bin, cfg, socket string, watchdog time.Duration) *agentProc {
	t.Helper()
	args := []string{bin, "run", "-c", cfg}
	if emulated() {
		qemu := os.Getenv("KITD_TEST_QEMU")
		if qemu == "" {
			t.Fatal("KITD_TEST_EMULATED is set but KITD_TEST_QEMU does not name the emulator")
		}
		args = append([]string{qemu}, args...)
	}
	a := &agentProc{t: t, done: make(chan struct{})}
	a.cmd = exec.Command(args[0], args[1:]...)
	a.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"NOTIFY_SOCKET=" + socket,
		fmt.Sprintf("WATCHDOG_USEC=%d", watchdog.Microseconds()),
	}
	a.cmd.Stdout, a.cmd.Stderr = &a.out, &a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(a.done)
		err := a.cmd.Wait()
		a.code = a.cmd.ProcessState.ExitCode()
		if err != nil && a.code == 0 {
			a.code = -1
		}
	}()
	t.Cleanup(func() {
		select {
		case <-a.done:
		default:
			a.cmd.Process.Kill()
			<-a.done
		}
		if t.Failed() {
			t.Logf("kitd output:\n%s", a.log())
		}
	})
	return a
}

func (a *agentProc) signal(sig os.Signal) {
	if err := a.cmd.Process.Signal(sig); err != nil {
		a.t.Fatalf("signal %s: %v", sig, err)
	}
}

func (a *agentProc) wait(timeout time.Duration) int {
	select {
	case <-a.done:
		return a.code
	case <-time.After(timeout):
		a.t.Fatalf("kitd still running %s after SIGTERM", timeout)
		return -1
	}
}
