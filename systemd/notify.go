package systemd

import (
	"fmt"
	"net"
	"strings"

	"golang.org/x/sys/unix"
)

// Notifier sends sd_notify messages to the service manager. The zero value
// and a Notifier made with an empty socket do nothing, so the agent calls
// it unconditionally whether or not it runs under systemd. It is safe for
// concurrent use.
type Notifier struct {
	addr *net.UnixAddr // nil: not under systemd
}

// NewNotifier returns a Notifier for the socket named by $NOTIFY_SOCKET: a
// path, or an abstract socket written with a leading '@'. An empty socket
// gives a Notifier whose methods do nothing and return nil.
func NewNotifier(socket string) *Notifier {
	if socket == "" {
		return &Notifier{}
	}
	// net maps a leading '@' to the abstract namespace, as systemd means it.
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}
}

// Ready says that start-up, or a reload, is complete.
func (n *Notifier) Ready() error { return n.send("READY=1") }

// Reloading says that a reload has begun; Ready must follow when it ends,
// whether the new configuration was taken or refused. MONOTONIC_USEC lets
// systemd 253+ match the READY=1 that ends this reload.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("systemd: reading CLOCK_MONOTONIC: %w", err)
	}
	return n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

// Stopping says that shutdown has begun.
func (n *Notifier) Stopping() error { return n.send("STOPPING=1") }

// Status sets the one-line status that `systemctl status` shows. The
// protocol is one assignment per line, so line breaks in s become spaces
// rather than a second, unintended assignment.
func (n *Notifier) Status(s string) error {
	return n.send("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// Watchdog pings the service manager's watchdog. Call it through
// RunWatchdog, which pings only while the agent's loops make progress.
func (n *Notifier) Watchdog() error { return n.send("WATCHDOG=1") }

// send dials for every message: a datagram costs microseconds, and a
// socket kept open would go stale if the service manager re-executes.
func (n *Notifier) send(state string) error {
	if n == nil || n.addr == nil {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("systemd: notify socket %s: %w", n.addr.Name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("systemd: notify socket %s: sending %s: %w", n.addr.Name, firstLine(state), err)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
