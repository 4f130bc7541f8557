package hw

import (
	"context"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/devices/v3/ds18b20"
	"periph.io/x/devices/v3/ds248x"
)

// shareWindow is how long a finished conversion counts as current for the
// other sensors on its bridge: their scratchpads hold a temperature at
// most this old, far below a probe's thermal time constant.
const shareWindow = time.Second

type bridgeKey = target

// bridge is one DS2482 shared by every DS18B20 behind it. It owns the
// 1-Wire bus (one user at a time, and nobody during a conversion, when
// parasite-powered sensors draw their current through the strong
// pull-up) and the converter: a read starts one "convert T" for every
// sensor on the bus, and reads that arrive while it runs, or within
// shareWindow after it ended, use it too.
type bridge struct {
	h   *Host
	t   target
	bus i2c.Bus

	// lock is the 1-Wire bus; a channel so that waiting respects ctx.
	lock chan struct{}
	// dev is the periph bridge; nil until first use, and again after any
	// error, because periph's ds248x keeps its first I2C error for good.
	// Guarded by lock.
	dev *ds248x.Dev

	ctx    context.Context // ends at Host.Close, stopping a conversion
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	res map[onewire.Address]int // attached sensors' resolutions
	cur *conversion             // running or last conversion
}

// conversion is one "convert T" on a bridge; err and end are written
// before done is closed.
type conversion struct {
	done chan struct{}
	err  error
	end  time.Time
}

func (c *conversion) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (h *Host) bridge(ctx context.Context, t target) (*bridge, error) {
	b, err := h.open(ctx, t)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if br, ok := h.bridges[t]; ok {
		return br, nil
	}
	br := &bridge{h: h, t: t, bus: b, lock: make(chan struct{}, 1), res: map[onewire.Address]int{}}
	br.ctx, br.cancel = context.WithCancel(context.Background())
	h.bridges[t] = br
	return br, nil
}

// withBus runs fn with the 1-Wire bus, starting the periph bridge first
// if needed.
func (b *bridge) withBus(ctx context.Context, fn func(onewire.Bus) error) error {
	select {
	case b.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.lock }()
	if b.dev == nil {
		d, err := ds248x.New(b.bus, b.t.addr, &ds248x.DefaultOpts)
		if err != nil {
			return fmt.Errorf("DS2482 %s: %v", b.t, err)
		}
		b.dev = d
	}
	err := fn(b.dev)
	if err != nil {
		b.dev = nil
	}
	return err
}

// attach reads the sensor's scratchpad through periph's constructor,
// which also sets its resolution (written to its EEPROM only when it
// differs), and counts the sensor in the conversion time.
func (b *bridge) attach(ctx context.Context, addr onewire.Address, res int) error {
	err := b.withBus(ctx, func(ow onewire.Bus) error {
		_, err := ds18b20.New(ow, addr, res)
		return err
	})
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.res[addr] = res
	b.mu.Unlock()
	return nil
}

func (b *bridge) detach(addr onewire.Address) {
	b.mu.Lock()
	delete(b.res, addr)
	b.mu.Unlock()
}

// convert makes sure every sensor on the bridge holds a fresh
// temperature: it joins a running conversion, reuses one that ended
// within shareWindow, or starts one. The conversion runs on its own
// goroutine, so a caller whose deadline passes leaves it to the others.
func (b *bridge) convert(ctx context.Context) error {
	b.mu.Lock()
	c := b.cur
	if c == nil || c.finished() && (c.err != nil || b.h.now().Sub(c.end) >= shareWindow) {
		c = &conversion{done: make(chan struct{})}
		b.cur = c
		res := 9
		for _, r := range b.res {
			res = max(res, r)
		}
		b.wg.Add(1)
		go b.run(c, res)
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bridge) run(c *conversion, res int) {
	defer b.wg.Done()
	c.err = b.withBus(b.ctx, func(ow onewire.Bus) error {
		// Skip ROM + Convert T: every sensor on the bus converts. The
		// strong pull-up feeds parasite-powered sensors meanwhile.
		if err := ow.Tx([]byte{0xCC, 0x44}, nil, onewire.StrongPullup); err != nil {
			return err
		}
		return b.h.Sleep(b.ctx, conversionTime(res))
	})
	c.end = b.h.now()
	close(c.done)
}

// conversionTime is the datasheet's maximum tCONV for a resolution:
// 93.75 ms at 9 bits, doubling per bit to 750 ms at 12.
func conversionTime(bits int) time.Duration {
	return 93750 * time.Microsecond << (bits - 9)
}

// scratchpad reads one sensor's 9-byte scratchpad (Match ROM, Read
// Scratchpad).
func (b *bridge) scratchpad(ctx context.Context, addr onewire.Address) ([9]byte, error) {
	var spad [9]byte
	err := b.withBus(ctx, func(ow onewire.Bus) error {
		d := onewire.Dev{Bus: ow, Addr: addr}
		return d.Tx([]byte{0xBE}, spad[:])
	})
	return spad, err
}

// close stops a running conversion and waits for it.
func (b *bridge) close() {
	b.cancel()
	b.wg.Wait()
}
