// Package serialtest gives tests a pseudo-terminal pair: the code under
// test opens the slave by its path as it would a UART, and the test plays
// the sensor on the master side.
package serialtest

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Sensor is the master side of a pty pair.
type Sensor struct {
	// Path is the slave's path (/dev/pts/N), the "serial port".
	Path string
	f    *os.File
}

// Safety bounds a test's wait for the code under test, so a broken
// driver fails the test instead of hanging it. It is never the thing a
// test measures.
const Safety = 20 * time.Second

// New opens a pty pair (posix_openpt, unlockpt, ptsname done with
// ioctls, since there is no cgo) and closes it when the test ends.
func New(t testing.TB) *Sensor {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("ptsname: %v", err)
	}
	s := &Sensor{Path: fmt.Sprintf("/dev/pts/%d", n), f: os.NewFile(uintptr(fd), "ptmx")}
	// Hold the slave open: when every slave fd is closed the master reads
	// EIO, and the code under test closes and re-opens its port at will.
	// This fd never reads, so it takes nothing from the code under test.
	hold, err := os.OpenFile(s.Path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		s.f.Close()
		t.Fatalf("open %s: %v", s.Path, err)
	}
	t.Cleanup(func() { s.f.Close(); hold.Close() })
	return s
}

// Read reads exactly n bytes the code under test sent.
func (s *Sensor) Read(n int) ([]byte, error) {
	s.f.SetReadDeadline(time.Now().Add(Safety))
	b := make([]byte, n)
	for got := 0; got < n; {
		m, err := s.f.Read(b[got:])
		got += m
		if err != nil {
			return b[:got], err
		}
	}
	return b, nil
}

// Write sends b to the code under test.
func (s *Sensor) Write(b []byte) error {
	_, err := s.f.Write(b)
	return err
}

// Close closes the master: the slave side then reads EIO, as a UART
// whose USB adapter was unplugged does.
func (s *Sensor) Close() error { return s.f.Close() }

// Serve answers the code under test in a goroutine: play handles one
// request per call and is called again until the test ends. When the
// test ends the master is closed, which ends a play waiting in Read; an
// error play returns before that fails the test.
func (s *Sensor) Serve(t testing.TB, play func(s *Sensor) error) {
	t.Helper()
	var stopped atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if err := play(s); err != nil {
				if !stopped.Load() {
					t.Errorf("pty sensor: %v", err)
				}
				return
			}
		}
	}()
	t.Cleanup(func() {
		stopped.Store(true)
		s.f.Close()
		<-done
	})
}

// Exclusive reports whether the tty at path is held for exclusive use
// (TIOCEXCL), asked through a second descriptor: root may open it anyway and
// asks the kernel; anyone else is refused with EBUSY, which is the answer. known is false only under qemu-user (KITD_TEST_EMULATED),
// which does not implement TIOCGEXCL: the flag is then checked by the native
// run alone.
func Exclusive(t testing.TB, path string) (held, known bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if errors.Is(err, unix.EBUSY) {
		return true, true // not root: the kernel refuses, which is the answer
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGEXCL)
	if errors.Is(err, unix.ENOSYS) && os.Getenv("KITD_TEST_EMULATED") != "" {
		return false, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return n == 1, true
}
