package hw

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// gate is the bus one sensor's driver sees. While a call is bound to a
// context, every transfer after that context ends fails at once: periph's
// drivers take no context, but they all go through Tx, so a driver
// looping on a status register or sleeping between transfers gives up
// the bus at its next transfer instead of after its own timeouts.
type gate struct {
	bus i2c.Bus

	mu  sync.Mutex
	ctx context.Context
	// last is the current call's last transfer error: some periph
	// drivers replace it with their own words ("failed to read shunt
	// voltage"), and the user needs both.
	last error
}

func newGate(b i2c.Bus) *gate { return &gate{bus: b} }

// bind makes ctx the current call's context until the returned func runs.
func (g *gate) bind(ctx context.Context) func() {
	g.mu.Lock()
	g.ctx, g.last = ctx, nil
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.ctx = nil
		g.mu.Unlock()
	}
}

// context returns the current call's context, or Background between
// calls.
func (g *gate) context() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx == nil {
		return context.Background()
	}
	return g.ctx
}

// explain adds the call's last transfer error to a driver's error that
// does not already carry it.
func (g *gate) explain(err error) error {
	g.mu.Lock()
	last := g.last
	g.mu.Unlock()
	if err == nil || last == nil || strings.Contains(err.Error(), last.Error()) {
		return err
	}
	return fmt.Errorf("%w: %w", err, last)
}

func (g *gate) Tx(addr uint16, w, r []byte) error {
	g.mu.Lock()
	ctx := g.ctx
	g.mu.Unlock()
	var err error
	if ctx != nil && ctx.Err() != nil {
		err = fmt.Errorf("i2c 0x%02x: call abandoned: %w", addr, ctx.Err())
	} else if err = g.bus.Tx(addr, w, r); err != nil {
		err = explainTx(addr, err)
	}
	if err != nil {
		g.mu.Lock()
		g.last = err
		g.mu.Unlock()
	}
	return err
}

func (g *gate) SetSpeed(f physic.Frequency) error { return g.bus.SetSpeed(f) }

func (g *gate) String() string { return g.bus.String() }

// explainTx adds what a bus error means. periph flattens errno into text
// ("sysfs-i2c: remote I/O error"), so the text is matched as well.
func explainTx(addr uint16, err error) error {
	switch {
	case isErrno(err, syscall.EREMOTEIO), isErrno(err, syscall.ENXIO):
		return fmt.Errorf("%w (no answer at 0x%02x: check wiring, power and the address)", err, addr)
	case isErrno(err, syscall.ETIMEDOUT):
		return fmt.Errorf("%w (bus timed out at 0x%02x: a chip may hold SDA or SCL low; check wiring, or power-cycle the sensor)", err, addr)
	}
	return err
}

func isErrno(err error, e syscall.Errno) bool {
	return errors.Is(err, e) || strings.HasSuffix(err.Error(), e.Error())
}
