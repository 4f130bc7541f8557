package hw

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/i2c"
)

// target is where an I2C chip is: a bus, an address and, for chips behind
// a PCA9548 multiplexer, the mux's address and channel.
type target struct {
	bus     string
	addr    uint16
	mux     bool
	muxAddr uint16
	channel int
}

func (t target) String() string {
	s := fmt.Sprintf("%s 0x%02x", t.bus, t.addr)
	if t.mux {
		s += fmt.Sprintf(" via pca9548 0x%02x channel %d", t.muxAddr, t.channel)
	}
	return s
}

// i2cTarget reads the options every I2C chip takes: bus, address (one of
// addrs, the chip's possible addresses), and mux_address/mux_channel, and
// claims the chip for this sensor alone.
func i2cTarget(o *sensors.Options, chip string, addrs ...uint16) target {
	return sharedTarget(o, chip, "", addrs...)
}

// sharedTarget is i2cTarget for a chip whose driver serialises its users:
// sensors of the same chip that name different units (share) may share
// it.
func sharedTarget(o *sensors.Options, chip, share string, addrs ...uint16) target {
	t := readTarget(o, chip, addrs...)
	o.Claim(i2cClaim{t: t, driver: chip, share: share})
	return t
}

func readTarget(o *sensors.Options, chip string, addrs ...uint16) target {
	t := target{bus: o.Bus("bus"), addr: o.Address("address", 0)}
	if t.addr != 0 && !slices.Contains(addrs, t.addr) {
		o.Fail("address", "0x%02x is not an address of the %s (%s)", t.addr, chip, hexList(addrs))
	}
	t.mux = o.Has("mux_channel") || o.Has("mux_address")
	if !t.mux {
		return t
	}
	t.muxAddr = o.Address("mux_address", 0x70)
	if t.muxAddr < 0x70 || t.muxAddr > 0x77 {
		o.Fail("mux_address", "0x%02x is not a PCA9548 address (0x70..0x77)", t.muxAddr)
	}
	if !o.Has("mux_channel") {
		o.Fail("mux_channel", "required with mux_address (0..7)")
	}
	t.channel = o.Int("mux_channel", 0)
	if t.channel < 0 || t.channel > 7 {
		o.Fail("mux_channel", "%d out of range 0..7", t.channel)
	}
	if t.addr == t.muxAddr {
		o.Fail("address", "0x%02x is the multiplexer's own address", t.addr)
	}
	return t
}

// open returns the bus the chip is on: the shared bus, or a channel of the
// shared multiplexer. The multiplexer is re-probed on every sensor open,
// so a sensor re-opened after failures also recovers a mux that reset.
func (h *Host) open(ctx context.Context, t target) (i2c.Bus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := h.bus(t.bus)
	if err != nil {
		return nil, err
	}
	if !t.mux {
		return b, nil
	}
	m, err := h.mux(t.bus, b, t.muxAddr)
	if err != nil {
		return nil, err
	}
	if err := m.reset(); err != nil {
		return nil, err
	}
	return muxPort{m: m, ch: t.channel}, nil
}

func hexList(addrs []uint16) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = fmt.Sprintf("0x%02x", a)
	}
	return strings.Join(s, ", ")
}
