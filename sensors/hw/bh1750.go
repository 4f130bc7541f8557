package hw

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/i2c"
)

// BH1750 instructions (datasheet p.5): one-time high-resolution
// measurement is 1 lx resolution, 180 ms at most, after which the chip
// powers down by itself.
const (
	bh1750PowerDown   = 0x00
	bh1750PowerOn     = 0x01
	bh1750Reset       = 0x07
	bh1750OneTimeHigh = 0x20
	bh1750MeasureTime = 180 * time.Millisecond
)

// bh1750Kind reads a BH1750 ambient light sensor with the datasheet's
// own instructions. periph's driver sends Reset (0x07) where it means
// Power On and Power Down, and the datasheet says Reset "is not
// acceptable in Power Down mode", the state the chip starts in and
// returns to after every one-time measurement: its measurement commands
// then go to a chip that ignores them, and the data register reads 0 lx.
//
// Opening sends Power On (the chip must acknowledge), Reset (clears the
// data register, accepted now) and Power Down. Each read sends Power On,
// One Time H-Resolution, waits 180 ms and reads; the chip powers down by
// itself. Close sends Power Down.
//
// Options: bus, address (0x23 with ADDR low, 0x5c high), mux_address,
// mux_channel.
func (h *Host) bh1750Kind() sensors.Kind {
	return sensors.Kind{
		Name:    "bh1750",
		Timeout: time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			t := i2cTarget(o, "BH1750", 0x23, 0x5c)
			open := func(ctx context.Context) (sensors.Driver, error) {
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					dev := i2c.Dev{Bus: g, Addr: t.addr}
					cmd := func(c byte, what string) error {
						if err := dev.Tx([]byte{c}, nil); err != nil {
							return fmt.Errorf("bh1750: %s: %w", what, err)
						}
						return nil
					}
					for _, c := range []struct {
						c    byte
						what string
					}{{bh1750PowerOn, "power on"}, {bh1750Reset, "reset"}, {bh1750PowerDown, "power down"}} {
						if err := cmd(c.c, c.what); err != nil {
							return nil, err
						}
					}
					return &chip{
						read: func(ctx context.Context) (sensors.Values, error) {
							if err := cmd(bh1750PowerOn, "power on"); err != nil {
								return nil, err
							}
							if err := cmd(bh1750OneTimeHigh, "measure"); err != nil {
								return nil, err
							}
							if err := h.Sleep(ctx, bh1750MeasureTime); err != nil {
								return nil, fmt.Errorf("bh1750: %w", err)
							}
							var b [2]byte
							if err := dev.Tx(nil, b[:]); err != nil {
								return nil, fmt.Errorf("bh1750: read: %w", err)
							}
							return sensors.Values{"illuminance": bh1750Lux(binary.BigEndian.Uint16(b[:]))}, nil
						},
						halt: func() error { return cmd(bh1750PowerDown, "power down") },
					}, nil
				})
			}
			return open, o.Done()
		},
	}
}

// bh1750Lux converts a count to lx: count / 1.2 at the default
// measurement time (datasheet p.7; 1.2 is the typical accuracy factor).
// Every count 0..65535 is inside the chip's 0..65535 lx range.
func bh1750Lux(count uint16) float64 { return float64(count) / 1.2 }
