package jobse2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/jobsemu"
	"github.com/kitd-dev/kitd/internal/testkit"
)

var kitdBin string

func TestMain(m *testing.M) {
	if os.Getenv("KITD_TEST_EMULATED") != "" {
		fmt.Println("e2e/jobs: native run only (KITD_TEST_EMULATED set)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "kitd-jobs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kitdBin = filepath.Join(dir, "kitd")
	args := []string{"build", "-o", kitdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "../../cmd/kitd")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/jobs: building kitd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const thing = "kit-proc"

type rig struct {
	t      *testing.T
	broker *testkit.Broker
	emu    *jobsemu.Emulator
	cfg    string
	log    testkit.LockedBuffer // every kitd process's stderr, in turn
}

func newRig(t *testing.T) *rig {
	t.Helper()
	b := testkit.StartBroker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emu, err := jobsemu.Start(ctx, b.URL, b.ClientTLS("jobs-service"), "jobs-service", jobsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	r := &rig{t: t, broker: b, emu: emu}
	dir := t.TempDir()
	pair := b.Client(thing)
	yaml := fmt.Sprintf(`device: { id: %s }
mqtt: { broker: %q, ca_file: %s, cert_file: %s, key_file: %s, max_publish_rate: 0, shutdown_timeout: 2s }
buffer: { dir: %s, max_bytes: 16MiB, min_free_bytes: 0 }
shadow: { enabled: false, state_file: %s }
jobs: { state_file: %s }
sensors:
  - { name: sim, driver: sim, interval: 500ms }
`, thing, b.URL, b.CA.CAFile, pair.CertFile, pair.KeyFile, filepath.Join(dir, "buffer"), filepath.Join(dir, "shadow.json"), filepath.Join(dir, "jobs.json"))
	r.cfg = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(r.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kitd logs:\n%s", r.log.String())
		}
	})
	return r
}

// proc is one kitd process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	code int
}

func (r *rig) start() *proc {
	r.t.Helper()
	fmt.Fprintf(&r.log, "--- kitd start\n")
	cmd := exec.Command(kitdBin, "run", "-c", r.cfg, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = &r.log
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	r.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// exit waits for p to exit and returns its code.
func (r *rig) exit(p *proc, limit time.Duration) int {
	r.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		r.t.Fatalf("kitd did not exit within %s", limit)
		return -1
	}
}

func (r *rig) wait(id, status string) *jobsemu.Change {
	r.t.Helper()
	testkit.WaitFor(r.t, 90*time.Second, id+" "+status, func() bool { return r.emu.Status(thing, id) == status })
	return r.emu.Execution(thing, id)
}

// kitd.restart with a real process: kitd stops cleanly and exits 75, the
// execution still IN_PROGRESS; the test, as systemd's Restart=on-failure
// would, starts it again, and the new process reports SUCCEEDED once
// connected. A SIGTERM then still exits 0.
func TestRestartProcess(t *testing.T) {
	r := newRig(t)
	p := r.start()
	if err := r.emu.Queue(thing, "restart-1", []byte(`{"operation":"kitd.restart"}`)); err != nil {
		t.Fatal(err)
	}
	if code := r.exit(p, 60*time.Second); code != 75 {
		t.Fatalf("kitd exited %d for a restart, want 75", code)
	}
	if !strings.Contains(r.log.String(), "stopped for a restart a job asked for (exit 75") {
		t.Errorf("no word of the restart on stderr")
	}
	x := r.emu.Execution(thing, "restart-1")
	if x.Status != "IN_PROGRESS" || x.StatusDetails["phase"] != "restarting" {
		t.Fatalf("after the exit: %+v", x)
	}
	p = r.start()
	x = r.wait("restart-1", "SUCCEEDED")
	if x.StatusDetails["restarted"] != "true" {
		t.Errorf("details %v", x.StatusDetails)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := r.exit(p, 30*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
}

// kill -9 during a job: the result never reached the service (the
// emulator drops it, as a lost message), kitd is killed with the
// execution IN_PROGRESS, and the next start resumes it (attempt 2) and
// reports SUCCEEDED: never IN_PROGRESS forever.
func TestKillNineDuringJob(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	dropped := 0
	r.emu.Drop(func(topic string, payload []byte) bool {
		var body struct{ Status string }
		if !strings.HasSuffix(topic, "/jobs/read-1/update") || json.Unmarshal(payload, &body) != nil || body.Status != "SUCCEEDED" {
			return false
		}
		mu.Lock()
		dropped++
		mu.Unlock()
		return true
	})
	p := r.start()
	if err := r.emu.Queue(thing, "read-1", []byte(`{"operation":"kitd.read-now"}`)); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 90*time.Second, "the result sent and lost", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return dropped > 0
	})
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	r.exit(p, 20*time.Second)
	if x := r.emu.Execution(thing, "read-1"); x.Status != "IN_PROGRESS" {
		t.Fatalf("after kill -9: %+v", x)
	}
	r.emu.Drop(nil)
	r.start()
	x := r.wait("read-1", "SUCCEEDED")
	if x.StatusDetails["read"] != "1" || !strings.HasPrefix(x.StatusDetails["seqs"], "sim:") {
		t.Errorf("details %v", x.StatusDetails)
	}
	attempts := map[string]bool{}
	for _, c := range r.emu.History(thing, "read-1") {
		if c.Status == "IN_PROGRESS" {
			attempts[c.StatusDetails["attempt"]] = true
		}
	}
	if !attempts["1"] || !attempts["2"] {
		t.Errorf("attempts seen IN_PROGRESS: %v", attempts)
	}
	if !bytes.Contains([]byte(r.log.String()), []byte("resuming an execution started before this agent started")) {
		t.Errorf("the second process did not say it resumed")
	}
}
