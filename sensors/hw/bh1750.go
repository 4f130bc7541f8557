package hw

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/devices/v3/bh1750"
)

// BH1750 one-time high-resolution measurement (datasheet p.5): 1 lx
// resolution, 180 ms at most, then the chip powers down by itself.
const (
	bh1750OneTimeHigh = 0x20
	bh1750MeasureTime = 180 * time.Millisecond
)

// bh1750Kind reads a BH1750 ambient light sensor. periph's constructor
// powers the chip on and resets it; the reads are our own, because
// periph's Sense truncates to whole lux before scaling (raw 1 reads 0 lx
// instead of 0.83) and cannot be interrupted during its 140 ms wait.
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
					dev, err := bh1750.NewI2C(g, t.addr)
					if err != nil {
						return nil, err
					}
					return &chip{
						read: func(ctx context.Context) (sensors.Values, error) {
							if err := g.Tx(t.addr, []byte{bh1750OneTimeHigh}, nil); err != nil {
								return nil, fmt.Errorf("bh1750: measure: %w", err)
							}
							if err := h.Sleep(ctx, bh1750MeasureTime); err != nil {
								return nil, fmt.Errorf("bh1750: %w", err)
							}
							var b [2]byte
							if err := g.Tx(t.addr, nil, b[:]); err != nil {
								return nil, fmt.Errorf("bh1750: read: %w", err)
							}
							return sensors.Values{"illuminance": bh1750Lux(binary.BigEndian.Uint16(b[:]))}, nil
						},
						halt: dev.Halt,
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
