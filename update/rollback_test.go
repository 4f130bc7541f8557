package update

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// kit is a state directory, a packaged "1.0.0" started by a supervisor
// as systemd would, and a job offering "1.1.0" built with behaviour.
type kit struct {
	state, dir string
	base       string
	env        []string
	srv        *server
	keys       keys
	health     time.Duration
	rel        release
}

func newKit(t *testing.T, behaviour string, health time.Duration) *kit {
	t.Helper()
	k := &kit{state: t.TempDir(), srv: newServer(t), keys: newKeys(t), health: health}
	k.dir = filepath.Join(k.state, "update")
	// The packaged binary: a copy of its own, as /usr/bin/kitd is.
	k.base = filepath.Join(t.TempDir(), "kitd")
	copyFile(t, fake(t, "1.0.0", "healthy"), k.base)
	k.env, k.rel = k.job(t, "job-1", "1.1.0", behaviour)
	return k
}

// job offers version built with behaviour as job id: the environment
// that makes the fake run it, and the release.
func (k *kit) job(t *testing.T, id, version, behaviour string) ([]string, release) {
	t.Helper()
	body, err := os.ReadFile(fake(t, version, behaviour))
	if err != nil {
		t.Fatal(err)
	}
	rel := release{body: body, version: version}
	doc := rel.doc(k.keys, k.srv.put("/kitd-"+version, body))
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	return append(env, "STATE_DIRECTORY="+k.state, "FAKE_JOB_ID="+id, "FAKE_JOB_DOC="+string(doc.raw(t)),
		"FAKE_PUBKEY="+k.keys.pub, "FAKE_CA="+k.srv.ca, "FAKE_HEALTH="+k.health.String(), "FAKE_STOP_GRACE=1s"), rel
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	writeFile(t, tmp, b, 0o755)
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// finalResult waits for a result line with a status and returns the
// version that printed it and the result.
func (s *supervisor) finalResult(t *testing.T) (string, map[string]any) {
	t.Helper()
	testkit.WaitFor(t, 2*time.Minute, "a final job result", func() bool {
		for _, l := range s.snapshot() {
			if strings.HasPrefix(l, "result ") && strings.Contains(l, `"Status":"`) && !strings.Contains(l, `"Status":""`) {
				return true
			}
		}
		return false
	})
	return s.result(t)
}

func details(r map[string]any) map[string]any {
	d, _ := r["Details"].(map[string]any)
	return d
}

func TestUpdateHealthySucceeds(t *testing.T) {
	k := newKit(t, "healthy", time.Minute)
	sup := supervise(t, k.base, k.env)
	v, r := sup.finalResult(t)
	if v != "1.1.0" || r["Status"] != "SUCCEEDED" {
		t.Fatalf("result by %s: %v, want SUCCEEDED by 1.1.0\n%q", v, r, sup.snapshot())
	}
	s, err := LoadState(k.dir)
	if err != nil || s.Current != "1.1.0" || s.Trial != nil || s.Outcome == nil || !s.Outcome.Healthy {
		t.Fatalf("state %+v (%v)", s, err)
	}
	sup.shutdown()
	if got := sup.exits[len(sup.exits)-1]; got != "0" {
		t.Errorf("stopped with status %s, want 0", got)
	}

	// The next start execs the installed version straight away, and the
	// job's outcome is still SUCCEEDED if asked again.
	sup = supervise(t, k.base, k.env)
	sup.waitLine("result ")
	if v, r := sup.result(t); v != "1.1.0" || r["Status"] != "SUCCEEDED" {
		t.Fatalf("after a restart: result by %s: %v\n%q", v, r, sup.snapshot())
	}
	if got := sup.snapshot(); got[0] != "start 1.1.0" {
		t.Errorf("first line after restart %q, want start 1.1.0", got[0])
	}
	sup.shutdown()

	// A package install replaces the packaged binary: it wins.
	copyFile(t, k.base, k.base)
	sup = supervise(t, k.base, k.env)
	sup.waitLine("start ")
	if got := sup.snapshot()[0]; got != "start 1.0.0" {
		t.Errorf("after a package install: %q, want start 1.0.0", got)
	}
	s, _ = LoadState(k.dir)
	if s.Current != "" {
		t.Errorf("state after a package install: %+v", s)
	}
	if _, err := os.Stat(binaryPath(k.dir, "1.1.0")); !os.IsNotExist(err) {
		t.Errorf("installed version kept after a package install: %v", err)
	}
}

// rolledBack checks the old version runs again and reports FAILED with
// reason.
func rolledBack(t *testing.T, k *kit, sup *supervisor, reason string) {
	t.Helper()
	v, r := sup.finalResult(t)
	if v != "1.0.0" || r["Status"] != "FAILED" {
		t.Fatalf("result by %s: %v, want FAILED by 1.0.0\n%q", v, r, sup.snapshot())
	}
	if got, _ := details(r)["reason"].(string); !strings.Contains(got, reason) || !strings.Contains(got, "rolled back to 1.0.0") {
		t.Errorf("reason %q, want it to contain %q", got, reason)
	}
	s, err := LoadState(k.dir)
	if err != nil || s.Current != "" || s.Trial != nil || s.Outcome == nil || s.Outcome.Healthy {
		t.Fatalf("state %+v (%v)", s, err)
	}
	if _, err := os.Stat(binaryPath(k.dir, "1.1.0")); !os.IsNotExist(err) {
		t.Errorf("the failed version is kept: %v", err)
	}
	// The old version keeps running: the service is up, not restarting.
	if n := strings.Count(strings.Join(sup.snapshot(), "\n"), "start 1.0.0"); n != 2 {
		t.Errorf("1.0.0 started %d times, want 2 (before and after the trial)\n%q", n, sup.snapshot())
	}
	sup.shutdown()
	if got := sup.exits[len(sup.exits)-1]; got != "0" {
		t.Errorf("stopped with status %s, want 0 (exits %v)", got, sup.exits)
	}
}

func TestRollbackCrashAtStart(t *testing.T) {
	k := newKit(t, "crash", time.Minute)
	rolledBack(t, k, supervise(t, k.base, k.env), "crashed at start: the new version 1.1.0 exited with status 2")
}

func TestRollbackHang(t *testing.T) {
	k := newKit(t, "hang", 2*time.Second)
	rolledBack(t, k, supervise(t, k.base, k.env), "hung: 1.1.0 did not get as far as running")
}

func TestRollbackNeverConnects(t *testing.T) {
	k := newKit(t, "noconnect", noConnectTimeout)
	rolledBack(t, k, supervise(t, k.base, k.env), "never connected: 1.1.0 was running but not healthy")
}

// The agent is killed (-9) mid-download: the next start resumes with a
// Range request and the update goes on to succeed.
func TestDownloadResumesAfterKill(t *testing.T) {
	k := newKit(t, "healthy", time.Minute)
	half := len(k.rel.body) / 2
	k.srv.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 1 {
			return false
		}
		w.WriteHeader(http.StatusOK)
		w.Write(k.rel.body[:half])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // until the client is gone
		return true
	}
	sup := supervise(t, k.base, k.env)
	part := filepath.Join(k.dir, downloadName, k.rel.doc(newKeys(t), "").SHA256+".part")
	testkit.WaitFor(t, time.Minute, "half the download on disk", func() bool {
		st, err := os.Stat(part)
		return err == nil && st.Size() >= int64(half)
	})
	sup.kill(syscall.SIGKILL)
	v, r := sup.finalResult(t)
	if v != "1.1.0" || r["Status"] != "SUCCEEDED" {
		t.Fatalf("result by %s: %v\n%q", v, r, sup.snapshot())
	}
	got := k.srv.rangesSeen()
	if len(got) != 2 || got[1] != "bytes="+strconv.Itoa(half)+"-" {
		t.Fatalf("Range headers %q, want a resume from byte %d", got, half)
	}
}

// The second update of a kit starts from an installed version: a failed
// trial brings that one back (exec'd by the packaged launcher), not the
// packaged binary.
func TestSecondUpdateRollsBackToTheInstalledVersion(t *testing.T) {
	k := newKit(t, "healthy", time.Minute)
	sup := supervise(t, k.base, k.env)
	if v, r := sup.finalResult(t); v != "1.1.0" || r["Status"] != "SUCCEEDED" {
		t.Fatalf("first update: result by %s: %v", v, r)
	}
	sup.shutdown()

	env, _ := k.job(t, "job-2", "1.2.0", "crash")
	sup = supervise(t, k.base, env)
	v, r := sup.finalResult(t)
	got, _ := details(r)["reason"].(string)
	if v != "1.1.0" || r["Status"] != "FAILED" || !strings.Contains(got, "rolled back to 1.1.0: crashed at start") {
		t.Fatalf("second update: result by %s: %v\n%q", v, r, sup.snapshot())
	}
	s, err := LoadState(k.dir)
	if err != nil || s.Current != "1.1.0" || s.Trial != nil {
		t.Fatalf("state %+v (%v)", s, err)
	}
	if _, err := os.Stat(binaryPath(k.dir, "1.2.0")); !os.IsNotExist(err) {
		t.Errorf("the failed version is kept: %v", err)
	}
	if _, err := os.Stat(binaryPath(k.dir, "1.1.0")); err != nil {
		t.Errorf("the current version is gone: %v", err)
	}
}

// noConnectTimeout is the health_timeout of the "never connects" trials:
// long enough that a loaded machine gets the new version as far as
// running first (else the reason is "hung"), which is all it bounds.
const noConnectTimeout = 10 * time.Second

// The new version confirms health just as the deadline stops it: it is
// current, and the launcher runs it rather than ending the service (an
// exit 0 would leave systemd's Restart=on-failure with nothing to do).
func TestTrialConfirmedAtTheDeadline(t *testing.T) {
	k := newKit(t, "late", 2*time.Second)
	sup := supervise(t, k.base, k.env)
	sup.waitLine("confirmed late 1.1.0")
	v, r := sup.finalResult(t)
	if v != "1.1.0" || r["Status"] != "SUCCEEDED" {
		t.Fatalf("result by %s: %v\n%q", v, r, sup.snapshot())
	}
	if s, err := LoadState(k.dir); err != nil || s.Current != "1.1.0" {
		t.Fatalf("state %+v (%v)", s, err)
	}
	sup.mu.Lock()
	starts := sup.starts
	sup.mu.Unlock()
	if starts != 2 {
		t.Errorf("%d starts, want 2 (the update's restart only): exits %v", starts, sup.exits)
	}
	sup.shutdown()
}
