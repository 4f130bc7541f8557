package hw

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/pca9548"
)

type muxKey struct {
	bus  string
	addr uint16
}

// mux is one PCA9548 shared by every sensor behind it. periph's driver
// remembers the selected channel, and only hands out channels through its
// global bus registry, so the mux keeps one periph device at a time under
// a lock: transfers share it (periph serialises channel select and
// transfer), reset replaces it, so two periph devices never drive one
// chip with different ideas of the selected channel.
type mux struct {
	bus  i2c.Bus
	addr uint16
	// name makes the port names periph registers unique to this mux
	// within the process (the registry is global).
	name string

	mu    sync.RWMutex
	names []string        // registered port names, by channel
	ports []i2c.BusCloser // open ports, by channel
}

func (h *Host) mux(busName string, b i2c.Bus, addr uint16) (*mux, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	k := muxKey{busName, addr}
	if m, ok := h.muxes[k]; ok {
		return m, nil
	}
	m := &mux{bus: b, addr: addr}
	m.name = fmt.Sprintf("kitd-%p-%s", m, busName)
	h.muxes[k] = m
	return m, nil
}

// reset probes the mux and starts a fresh periph device, which selects
// the channel again on the next transfer: after a power glitch the chip
// has no channel selected while an old device would believe it has.
func (m *mux) reset() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.release()
	d, err := pca9548.New(namedBus{m.bus, m.name}, &pca9548.Opts{Addr: int(m.addr)})
	if err != nil {
		return fmt.Errorf("pca9548 0x%02x: %v", m.addr, err)
	}
	names, err := d.RegisterPorts(m.name + "-ch")
	m.names = names
	if err != nil {
		m.release()
		return fmt.Errorf("pca9548 0x%02x: %v", m.addr, err)
	}
	for _, n := range names {
		p, err := i2creg.Open(n)
		if err != nil {
			m.release()
			return fmt.Errorf("pca9548 0x%02x: %v", m.addr, err)
		}
		m.ports = append(m.ports, p)
	}
	return nil
}

// release closes and unregisters the current device's ports; m.mu held.
func (m *mux) release() error {
	var errs []error
	for _, p := range m.ports {
		errs = append(errs, p.Close())
	}
	for _, n := range m.names {
		errs = append(errs, i2creg.Unregister(n))
	}
	m.ports, m.names = nil, nil
	return errors.Join(errs...)
}

func (m *mux) tx(ch int, addr uint16, w, r []byte) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if ch >= len(m.ports) {
		return fmt.Errorf("pca9548 0x%02x: not open (its last probe failed)", m.addr)
	}
	return m.ports[ch].Tx(addr, w, r)
}

func (m *mux) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.release()
}

// muxPort is one channel as a bus; it stays valid across mux resets.
type muxPort struct {
	m  *mux
	ch int
}

func (p muxPort) Tx(addr uint16, w, r []byte) error { return p.m.tx(p.ch, addr, w, r) }

func (p muxPort) SetSpeed(physic.Frequency) error {
	return errors.New("pca9548: the speed is the parent bus's")
}

func (p muxPort) String() string {
	return fmt.Sprintf("%s/pca9548-%02x/%d", p.m.bus, p.m.addr, p.ch)
}

// namedBus gives the parent bus the name periph derives port names from.
type namedBus struct {
	i2c.Bus
	name string
}

func (b namedBus) String() string { return b.name }
