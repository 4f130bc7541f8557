package update

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Environment between the launcher and the versions it starts.
const (
	// envLaunched marks a process the launcher started or exec'd, with
	// its version: such a process never launches again, so a bad state
	// file cannot make an exec loop.
	envLaunched = "KITD_UPDATE_LAUNCHED"
	// envTrial is the job id of the trial this process is.
	envTrial = "KITD_UPDATE_TRIAL"
	// envTrialFD is the pipe to the launcher: "running" and "healthy"
	// lines.
	envTrialFD = "KITD_UPDATE_TRIAL_FD"
)

// Dir is the update directory for a process with this environment:
// $STATE_DIRECTORY/update, where systemd's StateDirectory=kitd puts it
// (/var/lib/kitd/update; the first directory when there are several), the
// one place the hardened unit lets the agent write. Without
// STATE_DIRECTORY (kitd run by hand, no systemd to restart it) it is ""
// and updates are refused. It is not a config key: the launcher needs it
// before the config is read, and a packaged binary must find what a newer
// version installed even when it cannot parse that version's config.
func Dir(getenv func(string) string) string {
	if s, _, _ := strings.Cut(getenv("STATE_DIRECTORY"), ":"); s != "" {
		return filepath.Join(s, "update")
	}
	return ""
}

// Trial is the new version's side of an update: the agent says when it is
// running (config loaded, buffer open, sensors scheduled) and when it is
// healthy (its first broker connection). A nil *Trial (not a trial) is
// valid and does nothing.
type Trial struct {
	dir, jobID, version string
	log                 *slog.Logger

	mu        sync.Mutex
	pipe      *os.File // nil once confirmed, or when the launcher is gone
	confirmed chan struct{}
	err       error // why Confirm failed
}

// OpenTrial returns the trial this process is, or nil when it is not one
// (no update pending, or started by hand). version is the running
// version; getenv reads the process environment.
func OpenTrial(dir, version string, getenv func(string) string, log *slog.Logger) (*Trial, error) {
	job := getenv(envTrial)
	if job == "" {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Trial{dir: dir, jobID: job, version: version, log: log, confirmed: make(chan struct{})}
	if fd, err := strconv.Atoi(getenv(envTrialFD)); err == nil && fd > 2 {
		t.pipe = os.NewFile(uintptr(fd), "update-trial")
	}
	return t, nil
}

// JobID is the update job this trial belongs to.
func (t *Trial) JobID() string {
	if t == nil {
		return ""
	}
	return t.jobID
}

// Running tells the launcher the agent got as far as running: a later
// failure is "never connected", not "crashed at start".
func (t *Trial) Running() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tell("running")
}

func (t *Trial) tell(line string) {
	if t.pipe == nil {
		return
	}
	if _, err := t.pipe.WriteString(line + "\n"); err != nil {
		// The launcher is gone: the state file still decides.
		t.log.Warn("update: launcher pipe", "err", err)
		t.pipe.Close()
		t.pipe = nil
	}
}

// Confirm records that this version is healthy: it becomes the current
// version (state.json replaced atomically), the job's outcome is
// success, and versions older than the previous one are removed. Only the
// first call does anything; it is safe from any goroutine.
func (t *Trial) Confirm() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.confirmed:
		return t.err
	default:
	}
	t.err = t.confirm()
	if t.err == nil {
		t.tell("healthy")
		if t.pipe != nil {
			t.pipe.Close()
			t.pipe = nil
		}
		close(t.confirmed)
		t.log.Info("update: new version healthy", "version", t.version, "job", t.jobID)
	} else {
		t.log.Error("update: confirming the new version failed", "err", t.err)
	}
	return t.err
}

func (t *Trial) confirm() error {
	s, err := LoadState(t.dir)
	if err != nil {
		return err
	}
	tr := s.Trial
	if tr == nil || tr.JobID != t.jobID {
		if o := s.Outcome; o != nil && o.JobID == t.jobID && !o.Healthy {
			return fmt.Errorf("update: trial of job %s already ended: %s", t.jobID, o.Reason)
		}
		return fmt.Errorf("update: no trial of job %s in %s", t.jobID, filepath.Join(t.dir, stateName))
	}
	s.Previous, s.Current = s.Current, tr.To
	s.Trial = nil
	s.Outcome = &Outcome{JobID: tr.JobID, Healthy: true, From: tr.From, To: tr.To, At: time.Now().UTC()}
	if err := saveState(t.dir, s); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := prune(t.dir, s.Current, s.Previous); err != nil {
		t.log.Warn("update: removing old versions", "err", err)
	}
	_ = os.RemoveAll(filepath.Join(t.dir, downloadName))
	return nil
}

// Confirmed is closed once Confirm succeeded.
func (t *Trial) Confirmed() <-chan struct{} {
	if t == nil {
		return nil
	}
	return t.confirmed
}
