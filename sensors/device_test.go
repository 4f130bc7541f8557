package sensors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
)

func TestDeviceHungOpenHoldsAndClosesLateDriver(t *testing.T) {
	p := &probe{openHang: 200 * time.Millisecond}
	d := &device{open: p.Open, timeout: 20 * time.Millisecond}
	ctx := context.Background()
	if err := d.Open(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("hung open: %v", err)
	}
	if d.isOpen() || d.free() {
		t.Fatal("after an abandoned open the device must be held and not open")
	}
	if err := d.Open(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("open while held: %v", err)
	}
	testkit.WaitFor(t, 5*time.Second, "device released", d.free)
	// The driver the late open returned was closed: nobody will use it.
	if o, c, _ := p.counts(); o != 1 || c != 1 {
		t.Fatalf("opens=%d closes=%d after the late open returned", o, c)
	}
	p.mu.Lock()
	p.openHang = 0
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
	p := &probe{hang: func(int) time.Duration { return 100 * time.Millisecond }}
	d := &device{open: p.Open, timeout: time.Hour}
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	_, err := d.Read(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled read: %v", err)
	}
	// Closing while the read still runs is chained behind it.
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
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
