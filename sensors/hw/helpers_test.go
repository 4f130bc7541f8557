package hw

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

// testHost returns a Host whose buses are the given fakes and whose own
// waits return at once (periph's and the SHT drivers' sleeps are real
// but short).
func testHost(t *testing.T, buses map[string]i2c.BusCloser) *Host {
	t.Helper()
	h := NewHost(nil)
	h.OpenBus = func(name string) (i2c.BusCloser, error) {
		if b, ok := buses[name]; ok {
			return b, nil
		}
		return nil, busOpenError(name, syscall.ENOENT)
	}
	h.ListBuses = func() ([]string, error) {
		var names []string
		for n := range buses {
			names = append(names, n)
		}
		return names, nil
	}
	h.Sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	return h
}

// kind returns the named kind of h.
func kind(t *testing.T, h *Host, name string) sensors.Kind {
	t.Helper()
	for _, k := range h.Kinds() {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no kind %q", name)
	return sensors.Kind{}
}

// prepare runs a kind's Prepare and fails the test on an options error.
func prepare(t *testing.T, h *Host, name string, opts map[string]any) sensors.Opener {
	t.Helper()
	open, err := kind(t, h, name).Prepare("s", sensors.NewOptions(opts))
	if err != nil {
		t.Fatalf("%s: Prepare: %v", name, err)
	}
	return open
}

// openRead opens a sensor and reads it once; the driver is closed.
func openRead(t *testing.T, open sensors.Opener) (sensors.Values, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := open(ctx)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Read(ctx)
}

// wantValues compares values to within tol of each expected one.
func wantValues(t *testing.T, got, want sensors.Values, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("values %v, want %v", got, want)
	}
	for q, w := range want {
		g, ok := got[q]
		if !ok || g < w-tol || g > w+tol {
			t.Errorf("%s = %v, want %v ± %g (all: %v)", q, g, w, tol, got)
		}
	}
}

// closeHost closes h, which closes the playback buses: that fails when a
// script has operations left over.
func closeHost(t *testing.T, h *Host) {
	t.Helper()
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// fault is what faultBus does to one transaction.
type fault struct {
	err error // returned instead of the transfer, which never happens
	// short delivers only the first short bytes of a read; the rest read
	// 0xFF, as a bus reads when the chip stops driving SDA. 0: no effect.
	short int
	// flip inverts the low bit of the first byte read (corruption).
	flip bool
}

// faultBus wraps a bus and injects faults by transaction index.
type faultBus struct {
	i2c.BusCloser
	mu     sync.Mutex
	n      int
	faults map[int]fault
}

func (f *faultBus) Tx(addr uint16, w, r []byte) error {
	f.mu.Lock()
	ft, ok := f.faults[f.n]
	f.n++
	f.mu.Unlock()
	if ok && ft.err != nil {
		return ft.err
	}
	if err := f.BusCloser.Tx(addr, w, r); err != nil {
		return err
	}
	if ok && ft.short > 0 && ft.short < len(r) {
		for i := ft.short; i < len(r); i++ {
			r[i] = 0xFF
		}
	}
	if ok && ft.flip && len(r) > 0 {
		r[0] ^= 1
	}
	return nil
}

func (f *faultBus) SetSpeed(fr physic.Frequency) error { return nil }

// playback returns a playback bus that reports mismatches as errors:
// a panic on a driver's goroutine would end the test binary.
func playback(ops ...i2ctest.IO) *i2ctest.Playback {
	return &i2ctest.Playback{Ops: ops, DontPanic: true}
}

// isRemoteIO reports whether err is, or says, EREMOTEIO.
func isRemoteIO(err error) bool {
	return err != nil && (errors.Is(err, syscall.EREMOTEIO) || strings.Contains(err.Error(), syscall.EREMOTEIO.Error()))
}
