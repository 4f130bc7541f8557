package chipmodel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"periph.io/x/conn/v3/physic"
)

// Clock is model time. It starts at zero and moves only by Advance or
// Sleep.
type Clock struct {
	mu  sync.Mutex
	now time.Duration
}

// Now returns the model time.
func (c *Clock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves model time on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now += d
	c.mu.Unlock()
}

// Sleep is a wait in model time: it fails when ctx has ended, as a real
// wait would, and otherwise advances the clock by d at once.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// Device is a chip model. Tx is one I2C transaction: w is written, then,
// after a repeated start, len(r) bytes are read (either may be empty). An
// error stands for a NACK. The Bus calls Tx with its lock held, so a
// model sees one transaction at a time.
type Device interface {
	Tx(w, r []byte) error
}

// ErrCollision is returned when more than one device answers an address.
var ErrCollision = errors.New("chipmodel: two devices answered the same address (collision)")

// nack is what the kernel's i2c-dev returns when nobody acknowledges.
func nack(addr uint16) error {
	return fmt.Errorf("chipmodel: no ACK at 0x%02x: %w", addr, syscall.EREMOTEIO)
}

// Bus is an I2C bus with models on it; it implements i2c.BusCloser.
type Bus struct {
	name string
	// Clock, when set before use, advances by each transaction's time on
	// the wire at 100 kHz (9 bit times a byte, address bytes included):
	// a driver polling a status register sees the chip progress.
	Clock *Clock

	mu    sync.Mutex
	devs  map[uint16]Device
	muxes map[uint16]*Mux
	n     int
}

// NewBus returns an empty bus.
func NewBus(name string) *Bus {
	return &Bus{name: name, devs: map[uint16]Device{}, muxes: map[uint16]*Mux{}}
}

// Add puts d on the main bus at addr.
func (b *Bus) Add(addr uint16, d Device) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m, ok := d.(*Mux); ok {
		b.muxes[addr] = m
		return
	}
	b.devs[addr] = d
}

// Transactions returns how many transactions the bus carried.
func (b *Bus) Transactions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// Tx implements i2c.Bus.
func (b *Bus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	if b.Clock != nil {
		n := 1 + len(w)
		if len(r) > 0 {
			n += 1 + len(r)
		}
		b.Clock.Advance(time.Duration(n*9) * 10 * time.Microsecond)
	}
	var found []Device
	if d, ok := b.devs[addr]; ok {
		found = append(found, d)
	}
	if m, ok := b.muxes[addr]; ok {
		found = append(found, m)
	}
	for _, m := range b.muxes {
		found = append(found, m.behind(addr)...)
	}
	switch len(found) {
	case 0:
		return nack(addr)
	case 1:
		return found[0].Tx(w, r)
	}
	return fmt.Errorf("0x%02x: %w", addr, ErrCollision)
}

// SetSpeed implements i2c.Bus.
func (b *Bus) SetSpeed(physic.Frequency) error { return nil }

// Close implements i2c.BusCloser.
func (b *Bus) Close() error { return nil }

func (b *Bus) String() string { return b.name }

// Mux models a PCA9548A: one control register whose bit n connects
// downstream channel n (datasheet 8.6.1); several bits may be set, and the
// selection stays until written again. Power-on: no channel selected.
type Mux struct {
	mu   sync.Mutex
	ctrl byte
	devs [8]map[uint16]Device
}

// NewMux returns a mux with no channel selected.
func NewMux() *Mux { return &Mux{} }

// Add puts d behind channel ch at addr.
func (m *Mux) Add(ch int, addr uint16, d Device) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.devs[ch] == nil {
		m.devs[ch] = map[uint16]Device{}
	}
	m.devs[ch][addr] = d
}

// Selected returns the control register.
func (m *Mux) Selected() byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ctrl
}

// Reset returns the mux to power-on: no channel selected.
func (m *Mux) Reset() {
	m.mu.Lock()
	m.ctrl = 0
	m.mu.Unlock()
}

func (m *Mux) behind(addr uint16) []Device {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Device
	for ch := range m.devs {
		if m.ctrl&(1<<ch) == 0 {
			continue
		}
		if d, ok := m.devs[ch][addr]; ok {
			out = append(out, d)
		}
	}
	return out
}

// Tx writes or reads the control register.
func (m *Mux) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(w) > 1 {
		return errors.New("pca9548: one control byte per write")
	}
	if len(w) == 1 {
		m.ctrl = w[0]
	}
	for i := range r {
		r[i] = m.ctrl
	}
	return nil
}
