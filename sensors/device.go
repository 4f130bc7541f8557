package sensors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// device runs one sensor's driver calls (open, read, close), each in its
// own goroutine under a deadline, so a hung bus costs the caller at most
// the deadline. A call that misses its deadline is abandoned, not killed
// (Go cannot): it keeps the device (held) until it returns, and until then
// the device refuses every other call, because two users of one chip, or
// a read racing a re-open, corrupt the transaction on the wire.
//
// A device is owned by one goroutine; only the abandoned calls it leaves
// behind run concurrently with it, and they touch nothing but held.
type device struct {
	open    Opener
	timeout time.Duration

	drv Driver
	// held is closed when the abandoned call that holds the device returns;
	// nil when the device is free.
	held chan struct{}
}

// free reports whether no abandoned call holds the device.
func (d *device) free() bool {
	if d.held == nil {
		return true
	}
	select {
	case <-d.held:
		d.held = nil
		return true
	default:
		return false
	}
}

// isOpen reports whether the device has an open driver.
func (d *device) isOpen() bool { return d.drv != nil }

// Open opens the driver. An opener that returns after its deadline has its
// driver closed on the spot: the caller has moved on.
func (d *device) Open(ctx context.Context) error {
	if d.drv != nil {
		return nil
	}
	var drv Driver
	err := d.call(ctx, func(ctx context.Context) error {
		var err error
		drv, err = d.open(ctx)
		if err == nil && drv == nil {
			err = errors.New("opener returned no driver")
		}
		return err
	}, func() {
		if drv != nil {
			drv.Close()
		}
	})
	if err == nil {
		d.drv = drv
	}
	return err
}

// Read takes one sample from the open driver; a read that misses its
// deadline is abandoned and its result, when it comes, discarded.
func (d *device) Read(ctx context.Context) (Values, error) {
	if d.drv == nil {
		return nil, errors.New("device not open")
	}
	drv := d.drv
	var v Values
	err := d.call(ctx, func(ctx context.Context) error {
		var err error
		v, err = drv.Read(ctx)
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Close closes the driver. While an abandoned call still holds it, the
// close is chained behind that call (Driver.Close comes after the last
// Read has returned) and the device stays held until the close is done,
// so a re-open cannot overtake it.
func (d *device) Close(ctx context.Context) error {
	drv := d.drv
	d.drv = nil
	if drv == nil {
		return nil
	}
	if !d.free() {
		prev, next := d.held, make(chan struct{})
		d.held = next
		go func() {
			defer close(next)
			<-prev
			drv.Close()
		}()
		return nil
	}
	return d.call(ctx, func(context.Context) error { return drv.Close() }, nil)
}

// Call states, for the race between a call's return and its deadline: the
// side that moves the state out of callRunning decides what the result is.
const (
	callRunning int32 = iota
	callReturned
	callAbandoned
)

// call runs fn under the device's deadline. If the deadline (or ctx) wins,
// the device is held until fn returns, and then discard releases whatever
// fn produced that nobody will use.
func (d *device) call(ctx context.Context, fn func(context.Context) error, discard func()) error {
	if !d.free() {
		return ErrBusy
	}
	cctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var (
		state atomic.Int32
		err   error
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		err = fn(cctx)
		if !state.CompareAndSwap(callRunning, callReturned) && discard != nil {
			discard()
		}
	}()
	select {
	case <-done:
		return err
	case <-cctx.Done():
	}
	if !state.CompareAndSwap(callRunning, callAbandoned) {
		// fn returned just as the deadline passed: its result stands.
		<-done
		return err
	}
	d.held = done
	if errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("%w: no answer within %v, call abandoned", ErrTimeout, d.timeout)
	}
	return fmt.Errorf("call abandoned: %w", context.Cause(ctx))
}
