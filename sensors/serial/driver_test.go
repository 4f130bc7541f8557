package serial_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/serial"
	"github.com/kitd-dev/kitd/sensors/serial/serialtest"
	"golang.org/x/sys/unix"
)

// exclusive reports whether the port at path is held (TIOCEXCL), asked
// through a second descriptor: root may open it anyway and asks the
// kernel; anyone else is refused with EBUSY, which is the answer.
func exclusive(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if errors.Is(err, unix.EBUSY) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGEXCL)
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// The driver reads through the sensor's read func and owns the port
// until Close.
func TestOpenDriverOwnsThePort(t *testing.T) {
	s := serialtest.New(t)
	d, err := serial.OpenDriver(ctx(t), s.Path, nil, func(ctx context.Context, p *serial.Port) (serial.ReadFunc, error) {
		return func(ctx context.Context) (sensors.Values, error) {
			b, err := p.Next(ctx)
			return sensors.Values{"byte": float64(b)}, err
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]byte{0x42}); err != nil {
		t.Fatal(err)
	}
	v, err := d.Read(ctx(t))
	if err != nil || v["byte"] != 0x42 {
		t.Fatalf("read %v, %v; want byte 0x42", v, err)
	}
	if !exclusive(t, s.Path) {
		t.Error("port not held while the driver is open")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if exclusive(t, s.Path) {
		t.Error("port still held after Close")
	}
}

// A sensor that fails to set up gives its port back: otherwise every
// later open of it fails as busy.
func TestOpenDriverClosesThePortOnError(t *testing.T) {
	s := serialtest.New(t)
	setup := errors.New("no answer to the mode command")
	_, err := serial.OpenDriver(ctx(t), s.Path, nil, func(ctx context.Context, p *serial.Port) (serial.ReadFunc, error) {
		return nil, setup
	})
	if !errors.Is(err, setup) {
		t.Fatalf("error %v, want the sensor's", err)
	}
	if exclusive(t, s.Path) {
		t.Error("port still held after a failed open")
	}
}

// An open whose context has ended does not touch the port.
func TestOpenDriverEndedContext(t *testing.T) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, err := serial.OpenDriver(c, "/dev/nonexistent-kitd-test", nil, func(ctx context.Context, p *serial.Port) (serial.ReadFunc, error) {
		called = true
		return nil, nil
	})
	if !errors.Is(err, context.Canceled) || called {
		t.Fatalf("error %v (sensor set up: %v), want context.Canceled before any open", err, called)
	}
}
