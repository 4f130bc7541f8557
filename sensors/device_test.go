package sensors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

func TestDeviceHungOpenHoldsAndClosesLateDriver(t *testing.T) {
	// The open hangs until the test lets it go: one of fixed length could
	// end before a loaded machine fires the deadline or gets to the checks.
	hold := make(chan struct{})
	p := &probe{openHold: hold}
	d := &device{open: p.Open, timeout: 20 * time.Millisecond}
	ctx := context.Background()
	if err := d.Open(ctx); !errors.Is(err, ErrTimeout) {
		close(hold)
		t.Fatalf("hung open: %v", err)
	}
	if d.isOpen() || d.free() {
		close(hold)
		t.Fatal("after an abandoned open the device must be held and not open")
	}
	if err := d.Open(ctx); !errors.Is(err, ErrBusy) {
		close(hold)
		t.Fatalf("open while held: %v", err)
	}
	close(hold)
	testkit.WaitFor(t, 5*time.Second, "device released", d.free)
	// The driver the late open returned was closed: nobody will use it.
	if o, c, _ := p.counts(); o != 1 || c != 1 {
		t.Fatalf("opens=%d closes=%d after the late open returned", o, c)
	}
	p.mu.Lock()
	p.openHold = nil
	p.mu.Unlock()
	if err := d.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	p.checkMisuse(t)
}

func TestDeviceCancelIsNotATimeout(t *testing.T) {
	// The read hangs until the test lets it go, and is cancelled once it
	// has started: a read of fixed length could end before a cancel that a
	// loaded machine runs late.
	release := holdReads(t)
	p := &probe{readFn: release.read, started: make(chan int, 1)}
	d := &device{open: p.Open, timeout: time.Hour}
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-p.started
		cancel()
	}()
	_, err := d.Read(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled read: %v", err)
	}
	// Closing while the read still runs is chained behind it.
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, c, _ := p.counts(); c != 0 {
		t.Fatal("closed under the read")
	}
	release.open()
	testkit.WaitFor(t, 5*time.Second, "close after the read returned", func() bool {
		_, c, _ := p.counts()
		return c == 1 && d.free()
	})
	p.checkMisuse(t)
}

func TestDeviceOpenerReturningNoDriver(t *testing.T) {
	d := &device{open: func(context.Context) (Driver, error) { return nil, nil }, timeout: time.Second}
	if err := d.Open(context.Background()); err == nil || d.isOpen() {
		t.Fatal("a nil driver was accepted")
	}
	if _, err := d.Read(context.Background()); err == nil {
		t.Fatal("read of an unopened device succeeded")
	}
}
