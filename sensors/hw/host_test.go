package hw

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"periph.io/x/conn/v3/driver"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// Two sensors on different channels of one PCA9548 at the same address:
// each transfer goes to its own channel, the mux selected before it.
func TestMuxChannels(t *testing.T) {
	ops := []i2ctest.IO{
		// Open sensor A: probe the mux; select channel 3; BH1750 init.
		{Addr: 0x70, R: []byte{0x00}},
		{Addr: 0x70, W: []byte{1 << 3}},
	}
	ops = append(ops, bh1750Ops([2]byte{0x00, 0x0C})[:3]...)
	// Open sensor B: the mux is probed again (a fresh periph device), so
	// the channel is selected again, then channel 5.
	ops = append(ops,
		i2ctest.IO{Addr: 0x70, R: []byte{0x08}},
		i2ctest.IO{Addr: 0x70, W: []byte{1 << 5}},
	)
	ops = append(ops, bh1750Ops([2]byte{0x00, 0x0C})[:3]...)
	// Read A (channel 3), then B (channel 5).
	ops = append(ops,
		i2ctest.IO{Addr: 0x70, W: []byte{1 << 3}},
		i2ctest.IO{Addr: 0x23, W: []byte{0x01}},
		i2ctest.IO{Addr: 0x23, W: []byte{0x20}},
		i2ctest.IO{Addr: 0x23, R: []byte{0x00, 0x0C}},
		i2ctest.IO{Addr: 0x70, W: []byte{1 << 5}},
		i2ctest.IO{Addr: 0x23, W: []byte{0x01}},
		i2ctest.IO{Addr: 0x23, W: []byte{0x20}},
		i2ctest.IO{Addr: 0x23, R: []byte{0x00, 0x18}},
	)
	bus := playback(ops...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	ctx := context.Background()
	a, err := prepare(t, h, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23, "mux_channel": 3})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := prepare(t, h, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23, "mux_address": 0x70, "mux_channel": 5})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	va, err := a.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, va, map[string]float64{"illuminance": 10}, 1e-9)
	wantValues(t, vb, map[string]float64{"illuminance": 20}, 1e-9)
	closeHost(t, h)
}

func TestMuxAbsent(t *testing.T) {
	bus := &faultBus{BusCloser: playback(), faults: map[int]fault{0: {err: syscall.EREMOTEIO}}}
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	_, err := openRead(t, prepare(t, h, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23, "mux_channel": 1}))
	if err == nil || !strings.Contains(err.Error(), "pca9548 0x70") {
		t.Fatalf("err = %v", err)
	}
	h.Close()
}

// stuckBus answers every read with the same byte: a BMP280 whose status
// says "measuring" forever, which periph polls without end.
type stuckBus struct {
	*i2ctest.Playback
	b byte
	// polling, if set, is closed at the first read past the playback.
	polling chan struct{}
	once    sync.Once
}

func (s *stuckBus) Tx(addr uint16, w, r []byte) error {
	if s.Playback.Count < len(s.Playback.Ops) {
		return s.Playback.Tx(addr, w, r)
	}
	if s.polling != nil {
		s.once.Do(func() { close(s.polling) })
	}
	for i := range r {
		r[i] = s.b
	}
	return nil
}

// The gate ends a periph driver's endless loop at the read's deadline.
func TestGateStopsPeriphAtDeadline(t *testing.T) {
	ops := bmp280Ops(0x58)[:4]
	bus := &stuckBus{Playback: playback(ops...), b: 0x08}
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	d, err := prepare(t, h, "bmp280", map[string]any{"bus": "/dev/i2c-1", "address": 0x76, "oversampling": 1})(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The read's context ends once periph is in its endless poll; then
	// the read must return, with the context's error. (Waiting on a
	// clock would race the poll's start on a slow machine.)
	bus.polling = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := d.Read(ctx)
		done <- err
	}()
	select {
	case <-bus.polling:
	case err := <-done:
		t.Fatalf("read ended before the chip was polled: %v", err)
	}
	cancel()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the read did not return after its context ended: periph still polling")
	}
	if !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "abandoned") {
		t.Fatalf("err = %v", err)
	}
	d.Close()
	h.Close()
}

// A re-open (after failures) reads the chip id and calibration again, on
// the same shared bus.
func TestReopenReadsChipAgain(t *testing.T) {
	ops := append(bmp280Ops(0x58), bmp280Ops(0x58)...)
	bus := playback(ops...)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	open := prepare(t, h, "bmp280", map[string]any{"bus": "/dev/i2c-1", "address": 0x76, "oversampling": 1})
	for range 2 {
		if _, err := openRead(t, open); err != nil {
			t.Fatal(err)
		}
	}
	closeHost(t, h)
}

func TestBusOpenErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
		says string
	}{
		{&fs.PathError{Op: "open", Path: "/dev/i2c-1", Err: syscall.ENOENT}, ErrNoBus, "dtparam=i2c_arm=on"},
		{&fs.PathError{Op: "open", Path: "/dev/i2c-1", Err: syscall.EACCES}, ErrBusPermission, "group i2c"},
	} {
		err := busOpenError("/dev/i2c-1", c.err)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) || !strings.HasPrefix(err.Error(), "/dev/i2c-1: ") {
			t.Errorf("%v: %v", c.err, err)
		}
	}
	// A missing bus through a kind: the open error says what to do.
	h := testHost(t, nil)
	_, err := openRead(t, prepare(t, h, "sht3x", map[string]any{"bus": "/dev/i2c-7", "address": 0x44}))
	if !errors.Is(err, ErrNoBus) || !strings.Contains(err.Error(), "/dev/i2c-7") {
		t.Fatalf("err = %v", err)
	}
	if _, err := busNumber("/dev/i2c-x"); err == nil {
		t.Error("busNumber accepted /dev/i2c-x")
	}
}

// The real bus opener on a machine without /dev/i2c-99.
func TestOpenDevBusMissing(t *testing.T) {
	h := NewHost(nil)
	_, err := h.OpenBus("/dev/i2c-99")
	if err == nil {
		t.Fatal("opened /dev/i2c-99")
	}
	if !errors.Is(err, ErrNoBus) && !errors.Is(err, ErrHostInit) {
		t.Fatalf("err = %v", err)
	}
	h.Close()
}

type fakeDriver string

func (f fakeDriver) String() string          { return string(f) }
func (f fakeDriver) Prerequisites() []string { return nil }
func (f fakeDriver) After() []string         { return nil }
func (f fakeDriver) Init() (bool, error)     { return true, nil }

var _ driver.Impl = fakeDriver("")

// host.Init's State: the I2C driver failing is an error; other drivers
// failing are logged, since I2C does not need them.
func TestInitState(t *testing.T) {
	var logs bytes.Buffer
	h := NewHost(slog.New(slog.NewTextHandler(&logs, nil)))
	st := &driverreg.State{Failed: []driverreg.DriverFailure{{D: fakeDriver("bcm283x-gpio"), Err: errors.New("no /dev/gpiomem")}}}
	if err := h.initState(st, nil); err != nil {
		t.Fatalf("a GPIO failure must not stop I2C: %v", err)
	}
	if !strings.Contains(logs.String(), "bcm283x-gpio") {
		t.Errorf("log %q does not name the failed driver", logs.String())
	}
	st.Failed = append(st.Failed, driverreg.DriverFailure{D: fakeDriver("sysfs-i2c"), Err: errors.New("boom")})
	if err := h.initState(st, nil); !errors.Is(err, ErrHostInit) || !strings.Contains(err.Error(), "sysfs-i2c: boom") {
		t.Errorf("err = %v", err)
	}
	if err := h.initState(nil, errors.New("cycle")); !errors.Is(err, ErrHostInit) {
		t.Errorf("err = %v", err)
	}
}

func TestListBuses(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"i2c-10", "i2c-2", "i2c-1", "i2c-x", "spidev0.0"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	got, err := listBusesIn(dir)
	if err != nil || strings.Join(got, " ") != "/dev/i2c-1 /dev/i2c-2 /dev/i2c-10" {
		t.Fatalf("%v, %v", got, err)
	}
}

func TestHostClosed(t *testing.T) {
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": playback()})
	closeHost(t, h)
	closeHost(t, h)
	if _, err := openRead(t, prepare(t, h, "bh1750", map[string]any{"bus": "/dev/i2c-1", "address": 0x23})); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
}
