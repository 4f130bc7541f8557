package serial_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/serial"
	"github.com/kitd-dev/kitd/sensors/serial/serialtest"
)

func open(t *testing.T) (*serial.Port, *serialtest.Sensor) {
	t.Helper()
	s := serialtest.New(t)
	p, err := serial.Open(s.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), serialtest.Safety)
	t.Cleanup(cancel)
	return c
}

// Raw mode: every byte value passes unchanged both ways, including the
// ones a cooked tty would translate or swallow (CR, ^C, XON/XOFF, ^D).
func TestRawBytesPassUnchanged(t *testing.T) {
	p, s := open(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if err := p.Write(ctx(t), all); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(256)
	if err != nil || string(got) != string(all) {
		t.Fatalf("master read %x, %v", got, err)
	}
	if err := s.Write(all); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, 256)
	if err := p.ReadFull(ctx(t), back); err != nil || string(back) != string(all) {
		t.Fatalf("port read %x, %v", back, err)
	}
}

func TestSyncSkipsGarbage(t *testing.T) {
	p, s := open(t)
	s.Write([]byte{0x00, 0xFF, 0x13, 0xFF, 0xFF, 0x86, 0x42})
	skipped, err := p.Sync(ctx(t), []byte{0xFF, 0x86}, 64)
	if err != nil || skipped != 4 {
		t.Fatalf("Sync = %d, %v; want 4 skipped", skipped, err)
	}
	if b, err := p.Next(ctx(t)); b != 0x42 || err != nil {
		t.Fatalf("after header: %x, %v", b, err)
	}
}

func TestSyncGivesUpOnEndlessGarbage(t *testing.T) {
	p, s := open(t)
	s.Write([]byte(strings.Repeat("x", 100)))
	_, err := p.Sync(ctx(t), []byte{0x42, 0x4D}, 50)
	var ge *serial.GarbageError
	if !errors.As(err, &ge) || ge.Skipped != 51 || !strings.Contains(err.Error(), "no frame header") {
		t.Fatalf("Sync = %v", err)
	}
}

func TestNoAnswerEndsAtTheDeadline(t *testing.T) {
	p, _ := open(t)
	c, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := p.Sync(c, []byte{0xAA}, 10)
	var te *serial.TruncatedError
	if !errors.As(err, &te) || te.Got != 0 || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("Sync = %v", err)
	}
}

func TestCancelEndsARead(t *testing.T) {
	p, _ := open(t)
	c, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.ReadFull(c, make([]byte, 4)) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadFull = %v", err)
	}
}

// A frame cut short by the other end going away is an error that says
// so, never a short frame. (The kernel flushes a hung-up pty's unread
// input, so the test reads what was sent before it hangs up.)
func TestTruncatedByHangup(t *testing.T) {
	p, s := open(t)
	s.Write([]byte{1, 2, 3})
	if err := p.ReadFull(ctx(t), make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	err := p.ReadFull(ctx(t), make([]byte, 6))
	var te *serial.TruncatedError
	if !errors.As(err, &te) || te.Want != 6 || te.Got != 0 || !strings.Contains(err.Error(), "port gone") {
		t.Fatalf("ReadFull = %v", err)
	}
}

func TestTruncatedErrorSaysHowMuchArrived(t *testing.T) {
	e := &serial.TruncatedError{Got: 5, Want: 9, Err: context.DeadlineExceeded}
	if e.Error() != "truncated frame: 5 of 9 bytes, then context deadline exceeded" || !errors.Is(e, context.DeadlineExceeded) {
		t.Fatal(e)
	}
	e.Got = 0
	if !strings.HasPrefix(e.Error(), "no answer (check power") || !strings.HasSuffix(e.Error(), ": context deadline exceeded") {
		t.Fatal(e)
	}
}

func TestFlushDropsStaleBytes(t *testing.T) {
	p, s := open(t)
	s.Write([]byte{9, 9, 9})
	if b, err := p.Next(ctx(t)); b != 9 || err != nil {
		t.Fatal(b, err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	s.Write([]byte{7})
	if b, err := p.Next(ctx(t)); b != 7 || err != nil {
		t.Fatalf("after flush: %d, %v", b, err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := serial.Open("/dev/nonexistent-tty", nil); err == nil || !strings.Contains(err.Error(), "kitd sensors scan") {
		t.Errorf("missing: %v", err)
	}
	f := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(f, nil, 0o600)
	if _, err := serial.Open(f, nil); err == nil || !strings.Contains(err.Error(), "not a serial port") {
		t.Errorf("plain file: %v", err)
	}
	if _, err := serial.Open(f, &serial.Opts{Baud: 1234}); err == nil || !strings.Contains(err.Error(), "1234") {
		t.Errorf("baud: %v", err)
	}
}

func TestPortOption(t *testing.T) {
	for v, ok := range map[string]bool{
		"/dev/ttyS0": true, "/dev/serial0": true, "/dev/ttyUSB0": true, "/dev/pts/3": true,
		"/dev/serial/by-id/usb-1a86_USB2.0-Serial-if00-port0": true,
		"ttyS0": false, "/tmp/tty": false, "/dev/../etc/passwd": false, "/dev/": false, "/dev//ttyS0": false, "/dev/tty S0": false,
	} {
		o := sensors.NewOptions(map[string]any{"port": v})
		serial.PortOption(o, "port")
		if err := o.Done(); (err == nil) != ok {
			t.Errorf("%q: %v", v, err)
		} else if err != nil && !strings.HasPrefix(err.Error(), "port: ") {
			t.Errorf("%q: error does not name the option: %v", v, err)
		}
	}
	o := sensors.NewOptions(nil)
	serial.PortOption(o, "port")
	if err := o.Done(); err == nil || !strings.Contains(err.Error(), "port: required") {
		t.Errorf("missing: %v", err)
	}
}

func TestList(t *testing.T) {
	dev, sys := t.TempDir(), t.TempDir()
	for _, n := range []string{"ttyS0", "ttyS1", "ttyAMA0", "ttyUSB0", "ttyACM0", "tty0", "i2c-1"} {
		os.WriteFile(filepath.Join(dev, n), nil, 0o600)
	}
	os.Symlink("ttyAMA0", filepath.Join(dev, "serial0"))
	// ttyS1 is one of a PC's 8250 slots with no UART behind it.
	for n, typ := range map[string]string{"ttyS0": "4\n", "ttyS1": "0\n"} {
		os.MkdirAll(filepath.Join(sys, "class", "tty", n), 0o755)
		os.WriteFile(filepath.Join(sys, "class", "tty", n, "type"), []byte(typ), 0o644)
	}
	got, err := serial.List(dev, sys)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	serial.WriteList(&b, dev, got, nil)
	want := "Serial " + dev + ": 5 ports\n" +
		"  " + dev + "/serial0 -> ttyAMA0\n  " + dev + "/ttyACM0\n  " + dev + "/ttyAMA0\n  " + dev + "/ttyS0\n  " + dev + "/ttyUSB0\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	empty, err := serial.List(filepath.Join(dev, "none"), sys)
	b.Reset()
	serial.WriteList(&b, "/dev", empty, err)
	if err != nil || !strings.Contains(b.String(), "no serial ports") {
		t.Fatalf("empty: %q, %v", b.String(), err)
	}
}

// The port is held exclusively while open, so a second program (kitd
// sensors read beside the agent) gets EBUSY instead of interleaving its
// frames; the kernel lets root through, so the test asks the tty's flag.
func TestExclusiveWhileOpen(t *testing.T) {
	s := serialtest.New(t)
	p, err := serial.Open(s.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if held, known := serialtest.Exclusive(t, s.Path); known && !held {
		t.Error("not exclusive while open")
	}
	p.Close()
	if held, _ := serialtest.Exclusive(t, s.Path); held {
		t.Error("still exclusive after Close")
	}
}
