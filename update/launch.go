package update

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// defaultStopGrace is the unit's TimeoutStopSec.
const defaultStopGrace = 30 * time.Second

// LaunchOptions are what the launcher needs from `kitd run`.
type LaunchOptions struct {
	// Dir is the update directory (Dir(getenv)).
	Dir string
	// Args is the whole command line, program name first (os.Args): the
	// version started gets the same arguments.
	Args []string
	// Environ is the process environment (os.Environ()).
	Environ []string
	Log     *slog.Logger
	// StopGrace is how long a trial that missed its deadline has after
	// SIGTERM before SIGKILL; 0 means 30s, the unit's TimeoutStopSec.
	StopGrace time.Duration
	// exec replaces the process (syscall.Exec); tests record the call.
	exec func(path string, argv, env []string) error
}

// Launch runs first in `kitd run`, before the config is read, in whichever
// binary systemd started (/usr/bin/kitd). It returns exit=false when this
// binary should go on and run the agent itself; otherwise the caller exits
// with code (a trial child that ran and ended). When an installed version
// is current it does not return: it execs that version. When a trial is
// pending it starts the new version as a child, supervises it until it is
// healthy or has failed, and rolls back on failure (see doc.go).
//
// Launch never keeps the packaged binary from running: a state it cannot
// read or write is logged and the packaged binary runs.
func Launch(o LaunchOptions) (code int, exit bool) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.exec == nil {
		o.exec = syscall.Exec
	}
	if o.StopGrace <= 0 {
		o.StopGrace = defaultStopGrace
	}
	if o.Dir == "" || getenv(o.Environ, envLaunched) != "" {
		// Not under systemd, or started by a launcher: never again (no
		// exec loops).
		return 0, false
	}
	l := &launcher{o: o, log: o.Log}
	s, err := LoadState(o.Dir)
	if err != nil {
		l.log.Error("update: state unreadable, running the packaged binary", "err", err)
		return 0, false
	}
	if s.Current == "" && s.Trial == nil {
		return 0, false
	}
	self, err := os.Executable()
	if err == nil {
		var id *FileID
		if id, err = fileID(self); err == nil {
			l.self = *id
		}
	}
	if err != nil {
		l.log.Error("update: cannot identify this binary, running it", "err", err)
		return 0, false
	}
	if s.Base != nil && *s.Base != l.self {
		return l.packageWins(s)
	}
	if s.Trial != nil {
		return l.trial(s)
	}
	return l.runCurrent(s)
}

type launcher struct {
	o    LaunchOptions
	log  *slog.Logger
	self FileID
}

// packageWins drops every installed version: the packaged binary was
// replaced (a .deb install) after they were installed, and what the
// administrator installed last wins, upgrade or downgrade.
func (l *launcher) packageWins(s State) (int, bool) {
	l.log.Warn("update: the packaged binary changed since the last update: it wins over the installed versions", "current", s.Current)
	if tr := s.Trial; tr != nil {
		s.Outcome = &Outcome{JobID: tr.JobID, From: tr.From, To: tr.To, At: time.Now().UTC(),
			Reason: "the packaged binary was replaced (package install) before the new version's trial"}
	}
	s.Current, s.Previous, s.Trial = "", "", nil
	s.Base = &l.self
	if err := saveState(l.o.Dir, s); err != nil {
		l.log.Error("update: saving state", "err", err)
	}
	if err := prune(l.o.Dir); err != nil {
		l.log.Warn("update: removing installed versions", "err", err)
	}
	return 0, false
}

// runCurrent execs the current installed version, or returns to run the
// packaged binary when there is none or it cannot be exec'd.
func (l *launcher) runCurrent(s State) (int, bool) {
	if s.Current == "" {
		return 0, false
	}
	if s.Base == nil {
		s.Base = &l.self
		if err := saveState(l.o.Dir, s); err != nil {
			l.log.Error("update: saving state", "err", err)
		}
	}
	path := binaryPath(l.o.Dir, s.Current)
	env := setenv(l.o.Environ, envLaunched, s.Current)
	err := l.o.exec(path, l.argv(path), env)
	// Only a failed exec returns: a missing or damaged file must not
	// keep the kit down; the packaged binary is always there.
	l.log.Error("update: cannot run the installed version, running the packaged binary", "version", s.Current, "path", path, "err", err)
	return 0, false
}

func (l *launcher) argv(path string) []string {
	return append([]string{path}, l.o.Args[1:]...)
}

// trialRun is one supervised start of a new version.
type trialRun struct {
	l      *launcher
	tr     TrialRecord
	reason atomic.Pointer[string] // first cause of failure, once known
}

// trial starts the pending version as a child, once. A trial found
// already started (Attempts > 0) means the launcher that started it died
// with it (watchdog, power loss, kill): roll back.
func (l *launcher) trial(s State) (int, bool) {
	tr := *s.Trial
	if tr.Attempts > 0 {
		reason := fmt.Sprintf("the new version %s stopped before it proved healthy, and its launcher with it (power loss, or the service was killed) at its trial start %s", tr.To, tr.Started.Format(time.RFC3339))
		return l.rollback(tr, reason, false)
	}
	s.Trial.Attempts++
	s.Trial.Started = time.Now().UTC()
	s.Base = &l.self
	if err := saveState(l.o.Dir, s); err != nil {
		// Without the attempt counted, a crash could not be told
		// apart from a first start: do not try.
		return l.rollback(tr, fmt.Sprintf("cannot record the trial start: %v", err), false)
	}
	t := &trialRun{l: l, tr: tr}
	return t.run()
}

func (t *trialRun) fail(reason string) {
	t.reason.CompareAndSwap(nil, &reason)
}

func (t *trialRun) run() (int, bool) {
	l, tr := t.l, t.tr
	path := binaryPath(l.o.Dir, tr.To)
	pr, pw, err := os.Pipe()
	if err != nil {
		return l.rollback(tr, fmt.Sprintf("cannot start the new version: %v", err), false)
	}
	defer pr.Close()
	env := setenv(l.o.Environ, envLaunched, tr.To)
	env = setenv(env, envTrial, tr.JobID)
	env = setenv(env, envTrialFD, "3")
	proxy, err := newNotifyProxy(getenv(l.o.Environ, "NOTIFY_SOCKET"), l.log)
	if err != nil {
		pw.Close()
		return l.rollback(tr, fmt.Sprintf("cannot start the new version: %v", err), false)
	}
	defer proxy.close()
	if proxy != nil {
		env = setenv(env, "NOTIFY_SOCKET", proxy.addr)
		// The child is not systemd's main process; its pings reach
		// systemd through the proxy as the launcher's.
		env = unsetenv(env, "WATCHDOG_PID")
	}
	cmd := &exec.Cmd{Path: path, Args: l.argv(path), Env: env, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ExtraFiles: []*os.File{pw}}
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGABRT)
	defer signal.Stop(sigc)
	l.log.Info("update: starting the new version for its trial", "version", tr.To, "job", tr.JobID, "health_timeout", time.Duration(tr.HealthTimeout))
	if err := cmd.Start(); err != nil {
		pw.Close()
		return l.rollback(tr, fmt.Sprintf("crashed at start: the new version %s could not be started: %v", tr.To, err), false)
	}
	pw.Close()
	lines := make(chan string, 4)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if tr.HealthTimeout <= 0 {
		tr.HealthTimeout = Duration(DefaultConfig().HealthTimeout)
		t.tr = tr
	}
	deadline := time.NewTimer(time.Duration(tr.HealthTimeout))
	defer deadline.Stop()
	var kill <-chan time.Time
	running, healthy, stopping, aborted, late := false, false, false, false, false
	for {
		select {
		case line, ok := <-lines:
			switch {
			case !ok:
				lines = nil
			case line == "running":
				running = true
			case line == "healthy":
				healthy = true
				deadline.Stop()
				l.log.Info("update: the new version is healthy", "version", tr.To)
			}
		case sig := <-sigc:
			aborted = aborted || sig == syscall.SIGABRT
			switch {
			case sig == syscall.SIGHUP:
			case healthy:
				stopping = true
				proxy.allowStopping()
			default:
				// The service is going down (stop, start timeout,
				// watchdog) with the trial unproven: record the
				// rollback now, as systemd may SIGKILL us both.
				stopping = true
				proxy.allowStopping()
				if sig == syscall.SIGABRT {
					t.fail(fmt.Sprintf("hung: systemd's watchdog fired (no WATCHDOG=1 within WatchdogSec) before %s proved healthy", tr.To))
				} else {
					t.fail(fmt.Sprintf("the service was stopped (%s: systemctl stop, start timeout or shutdown) during the trial of %s, before it proved healthy", sig, tr.To))
				}
				_, _ = l.record(tr, *t.reason.Load())
			}
			_ = cmd.Process.Signal(sig)
		case <-deadline.C:
			if running {
				t.fail(fmt.Sprintf("never connected: %s was running but not healthy (broker connected) within health_timeout %s", tr.To, time.Duration(tr.HealthTimeout)))
			} else {
				t.fail(fmt.Sprintf("hung: %s did not get as far as running (config, buffer, sensors) within health_timeout %s", tr.To, time.Duration(tr.HealthTimeout)))
			}
			late = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			kill = time.After(l.o.StopGrace)
		case <-kill:
			_ = cmd.Process.Kill()
		case err := <-exited:
			return t.ended(err, running, healthy, stopping, aborted, late)
		}
	}
}

// ended decides after the child's exit: a healthy trial's exit is the
// service's exit; any other is a rollback.
func (t *trialRun) ended(err error, running, healthy, stopping, aborted, late bool) (int, bool) {
	l, tr := t.l, t.tr
	code, how := exitStatus(err)
	if !healthy {
		// It may have confirmed just before it died, with the line
		// not yet read: the state file decides.
		if s, lerr := LoadState(l.o.Dir); lerr == nil && s.Trial == nil && s.Outcome != nil && s.Outcome.JobID == tr.JobID && s.Outcome.Healthy {
			healthy = true
		}
	}
	if healthy && late && !stopping {
		// It confirmed as the deadline stopped it: it is current now,
		// and the service must go on (exiting 0 would leave it
		// stopped), so run it as any current version.
		s, lerr := LoadState(l.o.Dir)
		if lerr != nil {
			l.log.Error("update: state unreadable; running the packaged binary", "err", lerr)
			return 0, false
		}
		return l.runCurrent(s)
	}
	if healthy {
		l.log.Info("update: the new version exited", "version", tr.To, "status", how)
		if code < 0 || aborted {
			// Killed by a signal, or by the watchdog's SIGABRT (Go
			// exits 2 on it, which the unit does not restart): a
			// failure, so systemd restarts.
			code = 1
		}
		return code, true
	}
	if running {
		t.fail(fmt.Sprintf("the new version %s %s after it started, before it proved healthy", tr.To, how))
	} else {
		t.fail(fmt.Sprintf("crashed at start: the new version %s %s before it was running", tr.To, how))
	}
	code, exit := l.rollback(tr, *t.reason.Load(), stopping)
	if aborted {
		code = 1
	}
	return code, exit
}

// rollback ends the trial as failed, keeps the current version and runs
// it; when the service is stopping it exits instead (code 0, or 1 after
// the watchdog fired, so systemd restarts it).
func (l *launcher) rollback(tr TrialRecord, reason string, stopping bool) (int, bool) {
	s, err := l.record(tr, reason)
	if err != nil {
		l.log.Error("update: state unreadable during rollback; running the packaged binary", "err", err)
		return 0, false
	}
	if stopping {
		return 0, true
	}
	return l.runCurrent(s)
}

// record saves the trial's failure (once: a second call finds no trial)
// and removes the failed version's files.
func (l *launcher) record(tr TrialRecord, reason string) (State, error) {
	s, err := LoadState(l.o.Dir)
	if err != nil {
		return s, err
	}
	if s.Trial == nil || s.Trial.JobID != tr.JobID {
		return s, nil
	}
	l.log.Error("update: rolling back", "job", tr.JobID, "from", tr.To, "to", tr.From, "reason", reason)
	s.Trial = nil
	s.Outcome = &Outcome{JobID: tr.JobID, From: tr.From, To: tr.To, Reason: reason, At: time.Now().UTC()}
	if err := saveState(l.o.Dir, s); err != nil {
		l.log.Error("update: saving the rollback", "err", err)
	}
	if err := prune(l.o.Dir, s.Current, s.Previous); err != nil {
		l.log.Warn("update: removing the failed version", "err", err)
	}
	return s, nil
}

// exitStatus describes how a child ended; code is -1 for a signal.
func exitStatus(err error) (int, string) {
	if err == nil {
		return 0, "exited with status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, "was killed by signal " + ws.Signal().String()
		}
		return ee.ExitCode(), fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	return 1, err.Error()
}

// notifyProxy passes the trial child's sd_notify messages to systemd as
// the launcher's, since NotifyAccess=main accepts only the main process.
// STOPPING=1 is held back unless the service itself is stopping: a trial
// the launcher stops is not the service stopping.
type notifyProxy struct {
	addr     string
	conn     *net.UnixConn
	stopping atomic.Bool
	done     chan struct{}
}

func newNotifyProxy(target string, log *slog.Logger) (*notifyProxy, error) {
	if target == "" {
		return nil, nil
	}
	// Abstract namespace: nothing to create or clean up on disk, and the
	// unit allows AF_UNIX.
	addr := fmt.Sprintf("@kitd-update-%d", os.Getpid())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify proxy: %w", err)
	}
	p := &notifyProxy{addr: addr, conn: conn, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		dst := &net.UnixAddr{Name: target, Net: "unixgram"}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msg := p.filter(string(buf[:n]))
			if msg == "" {
				continue
			}
			c, err := net.DialUnix("unixgram", nil, dst)
			if err != nil {
				log.Debug("update: notify proxy", "err", err)
				continue
			}
			_, _ = c.Write([]byte(msg))
			c.Close()
		}
	}()
	return p, nil
}

func (p *notifyProxy) filter(msg string) string {
	if p.stopping.Load() {
		return msg
	}
	var keep []string
	for _, line := range strings.Split(msg, "\n") {
		if line != "STOPPING=1" {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func (p *notifyProxy) allowStopping() {
	if p != nil {
		p.stopping.Store(true)
	}
}

func (p *notifyProxy) close() {
	if p == nil {
		return
	}
	p.conn.Close()
	<-p.done
}

func getenv(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func setenv(environ []string, key, value string) []string {
	return append(unsetenv(environ, key), key+"="+value)
}

func unsetenv(environ []string, key string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return out
}
