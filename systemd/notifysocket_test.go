package systemd

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notifySocket is what systemd is to the agent: a datagram socket that
// collects sd_notify messages.
type notifySocket struct {
	t    *testing.T
	path string
	conn *net.UnixConn
	msgs chan string
}

// listenNotify listens on a fresh socket. The directory is short-named
// because a socket path must fit in 108 bytes and t.TempDir's may not.
func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &notifySocket{t: t, path: path, conn: conn, msgs: make(chan string, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(s.msgs)
				return
			}
			s.msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

// next returns the next message, failing the test after timeout.
func (s *notifySocket) next(timeout time.Duration) string {
	s.t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			s.t.Fatal("notify socket closed")
		}
		return m
	case <-time.After(timeout):
		s.t.Fatalf("no sd_notify message within %s", timeout)
		return ""
	}
}

// waitFor skips messages until one starts with prefix and returns it;
// skipped messages go to seen, if not nil.
func (s *notifySocket) waitFor(prefix string, timeout time.Duration, seen *[]string) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			s.t.Fatalf("no %q message within %s (saw %q)", prefix, timeout, deref(seen))
		}
		select {
		case m, ok := <-s.msgs:
			if !ok {
				s.t.Fatalf("notify socket closed while waiting for %q", prefix)
			}
			if strings.HasPrefix(m, prefix) {
				return m
			}
			if seen != nil {
				*seen = append(*seen, m)
			}
		case <-time.After(left):
		}
	}
}

// drain returns the messages already received.
func (s *notifySocket) drain() []string {
	var out []string
	for {
		select {
		case m := <-s.msgs:
			out = append(out, m)
		default:
			return out
		}
	}
}

// quiet asserts that no message starting with prefix arrives for d.
func (s *notifySocket) quiet(prefix string, d time.Duration) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-s.msgs:
			if strings.HasPrefix(m, prefix) {
				s.t.Fatalf("got %q, want no %s message for %s", m, prefix, d)
			}
		case <-deadline:
			return
		}
	}
}

func deref(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}

func listenAbstract(name string) (*net.UnixConn, error) {
	return net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
}
