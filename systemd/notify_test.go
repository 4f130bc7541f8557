package systemd

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const wait = 5 * time.Second

func TestNotifierSendsEachState(t *testing.T) {
	s := listenNotify(t)
	n := NewNotifier(s.path)
	steps := []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{func() error { return n.Status("connected, 3 pending, 0 dropped") }, "STATUS=connected, 3 pending, 0 dropped"},
		{n.Watchdog, "WATCHDOG=1"},
		{n.Stopping, "STOPPING=1"},
	}
	for _, st := range steps {
		if err := st.send(); err != nil {
			t.Fatalf("sending %s: %v", st.want, err)
		}
		if got := s.next(wait); got != st.want {
			t.Fatalf("got %q, want %q", got, st.want)
		}
	}
}

func TestNotifierReloadingCarriesMonotonicUsec(t *testing.T) {
	s := listenNotify(t)
	n := NewNotifier(s.path)
	before := monotonicUsec(t)
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec(t)
	lines := strings.Split(s.next(wait), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("got %q, want RELOADING=1 and MONOTONIC_USEC=", lines)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if usec < before || usec > after {
		t.Fatalf("MONOTONIC_USEC=%d, want CLOCK_MONOTONIC between %d and %d", usec, before, after)
	}
}

func monotonicUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// A status with a line break must not smuggle in a second assignment such
// as READY=1.
func TestNotifierStatusIsOneLine(t *testing.T) {
	s := listenNotify(t)
	n := NewNotifier(s.path)
	if err := n.Status("offline\nREADY=1\r\nx"); err != nil {
		t.Fatal(err)
	}
	if got, want := s.next(wait), "STATUS=offline READY=1 x"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestNotifierWithoutSocketDoesNothing(t *testing.T) {
	for _, n := range []*Notifier{NewNotifier(""), {}, nil} {
		for name, f := range map[string]func() error{
			"Ready": n.Ready, "Reloading": n.Reloading, "Stopping": n.Stopping,
			"Watchdog": n.Watchdog, "Status": func() error { return n.Status("x") },
		} {
			if err := f(); err != nil {
				t.Errorf("%s without a socket: %v, want nil", name, err)
			}
		}
	}
}

func TestNotifierAbstractSocket(t *testing.T) {
	// '@' is how $NOTIFY_SOCKET names a socket in the abstract namespace.
	name := "@kitd-test-" + strconv.Itoa(unix.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	conn, err := listenAbstract(name)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := NewNotifier(name).Ready(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(wait))
	k, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:k]); got != "READY=1" {
		t.Fatalf("got %q, want READY=1", got)
	}
}

func TestNotifierMissingSocketNamesIt(t *testing.T) {
	path := t.TempDir() + "/gone"
	err := NewNotifier(path).Ready()
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want an error naming %s", err, path)
	}
}
