package update

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kitd-dev/kitd/internal/testkit"
)

// notifyListener is systemd's side of NOTIFY_SOCKET: every message with
// the PID the kernel says sent it (SO_PASSCRED), as systemd checks
// NotifyAccess=main.
type notifyListener struct {
	path string
	mu   sync.Mutex
	msgs []string // "PID MESSAGE"
}

func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // a socket path must fit 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := &notifyListener{path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: l.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, oob := make([]byte, 4096), make([]byte, 1024)
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			pid := int32(-1)
			if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range cms {
					if cred, err := unix.ParseUnixCredentials(&cm); err == nil {
						pid = cred.Pid
					}
				}
			}
			l.mu.Lock()
			l.msgs = append(l.msgs, fmt.Sprintf("%d %s", pid, buf[:n]))
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return l
}

func (l *notifyListener) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

// The trial child's sd_notify messages reach systemd as the launcher's
// (the main process), and the STOPPING=1 of a trial the launcher stops is
// held back: the service is not stopping, the old version takes over.
func TestTrialNotifiesThroughTheLauncher(t *testing.T) {
	k := newKit(t, "noconnect", noConnectTimeout)
	nl := listenNotify(t)
	sup := supervise(t, k.base, append(k.env, "NOTIFY_SOCKET="+nl.path))
	rolledBackResult(t, sup, "never connected")
	testkit.WaitFor(t, time.Minute, "READY=1 from the old version after the rollback", func() bool {
		return strings.Count(strings.Join(sup.snapshot(), "\n"), "ready 1.0.0") == 2
	})
	sup.mu.Lock()
	launcher := sup.pids[1] // the second start: the one that ran the trial
	sup.mu.Unlock()
	// Both READY=1 of the second start are in: the child's (sent before
	// its stop) and, after it, the old version's.
	testkit.WaitFor(t, time.Minute, "two READY=1 from the launcher", func() bool {
		return strings.Count(strings.Join(nl.all(), "\n"), fmt.Sprintf("%d READY=1", launcher)) == 2
	})
	var second []string
	for _, m := range nl.all() {
		if strings.HasPrefix(m, fmt.Sprint(launcher)+" ") {
			second = append(second, strings.TrimPrefix(m, fmt.Sprint(launcher)+" "))
		}
	}
	if got := strings.Join(second, ","); got != "READY=1,READY=1" {
		t.Errorf("the launcher's messages %q, want READY=1 (the child's, proxied) then READY=1 (the old version's), no STOPPING=1 between", second)
	}
	for _, m := range nl.all() {
		pid := strings.SplitN(m, " ", 2)[0]
		if pid != fmt.Sprint(sup.pids[0]) && pid != fmt.Sprint(launcher) {
			t.Errorf("message %q from a process that is not the main one (%v)", m, sup.pids)
		}
	}
	sup.shutdown()
}

// rolledBackResult waits for the old version's FAILED result.
func rolledBackResult(t *testing.T, sup *supervisor, reason string) {
	t.Helper()
	v, r := sup.finalResult(t)
	got, _ := details(r)["reason"].(string)
	if v != "1.0.0" || r["Status"] != "FAILED" || !strings.Contains(got, reason) {
		t.Fatalf("result by %s: %v, want FAILED by 1.0.0 with %q\n%q", v, r, reason, sup.snapshot())
	}
}

// systemd's watchdog fires on a hung trial: SIGABRT to the main process,
// the launcher. It records the hang, passes the signal on and exits 1 so
// systemd restarts the service, which runs the old version.
func TestRollbackWatchdog(t *testing.T) {
	k := newKit(t, "hang", time.Hour)
	sup := supervise(t, k.base, k.env)
	sup.waitLine("start 1.1.0")
	sup.kill(syscall.SIGABRT)
	rolledBack(t, k, sup, "hung: systemd's watchdog fired")
	if sup.exits[1] != "1" {
		t.Errorf("the launcher exited %s after the watchdog, want 1 (exits %v)", sup.exits[1], sup.exits)
	}
}
