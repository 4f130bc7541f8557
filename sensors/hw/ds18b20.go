package hw

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/w1"
	"periph.io/x/conn/v3/onewire"
)

// Datasheet operating range of the DS18B20 family: -55..125 °C.
var ds18b20Limits = []limit{{"temperature", -55, 125, "°C"}}

// ds18b20Kind reads a DS18B20 (or DS18S20, DS1822, DS1825, DS28EA00) by
// its 1-Wire id, through one of two paths chosen by the options:
//
//   - the kernel's w1 sysfs files (the default; dtoverlay=w1-gpio on a
//     Pi): options id, w1_dir (default /sys/bus/w1/devices), resolution;
//   - a DS2482 I2C-to-1-Wire bridge: options id, bus, address (0x18 or
//     0x19), mux_address, mux_channel, resolution.
//
// resolution is 9..12 bits (default 12: 0.0625 °C, 750 ms per
// conversion). On the kernel path it is set through the kernel's
// resolution file, which only root may write; the open error says how.
func (h *Host) ds18b20Kind() sensors.Kind {
	return sensors.Kind{
		Name:    "ds18b20",
		Timeout: 3 * time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			id := strings.ToLower(o.String("id", ""))
			switch {
			case id == "":
				o.Fail("id", "required, e.g. 28-0316a2795aff (kitd sensors scan lists them)")
			case !w1.IsThermometerID(id):
				o.Fail("id", "%q is not a 1-Wire thermometer id such as 28-0316a2795aff", id)
			}
			setRes := o.Has("resolution")
			res := o.Int("resolution", 12)
			switch {
			case res < 9 || res > 12:
				o.Fail("resolution", "%d out of range 9..12 bits", res)
			case setRes && strings.HasPrefix(id, "10-"):
				o.Fail("resolution", "the DS18S20 (family 10) has a fixed resolution; drop the option")
			}
			bridged := o.Has("bus") || o.Has("address") || o.Has("mux_address") || o.Has("mux_channel")
			if !bridged {
				dir := o.String("w1_dir", w1.DefaultDir)
				if !filepath.IsAbs(dir) {
					o.Fail("w1_dir", "%q must be an absolute path", dir)
				}
				open := func(ctx context.Context) (sensors.Driver, error) {
					return openSysfs(ctx, dir, id, res, setRes)
				}
				return open, o.Done()
			}
			if o.Has("w1_dir") {
				o.Fail("w1_dir", "not with bus: w1_dir is the kernel's 1-Wire, bus and address a DS2482 bridge")
			}
			// The bridge serialises its 1-Wire bus: thermometers behind
			// one DS2482 share it.
			t := sharedTarget(o, "DS2482", id, 0x18, 0x19)
			var addr onewire.Address
			if w1.IsThermometerID(id) {
				addr = romAddress(id)
			}
			open := func(ctx context.Context) (sensors.Driver, error) {
				b, err := h.bridge(ctx, t)
				if err != nil {
					return nil, err
				}
				if err := b.attach(ctx, addr, res); err != nil {
					return nil, fmt.Errorf("%s on DS2482 %s: %w", id, t, err)
				}
				return &bridgedDS18B20{b: b, id: id, addr: addr, res: res}, nil
			}
			return open, o.Done()
		},
	}
}

// romAddress turns the kernel's id (family, then the 48-bit serial as a
// hex number) into the 64-bit ROM code periph uses: family in the low
// byte, serial, CRC-8 of both in the high byte.
func romAddress(id string) onewire.Address {
	family, _ := strconv.ParseUint(id[:2], 16, 8)
	serial, _ := strconv.ParseUint(id[3:], 16, 48)
	a := family | serial<<8
	var b [7]byte
	for i := range b {
		b[i] = byte(a >> (8 * i))
	}
	return onewire.Address(a | uint64(onewire.CalcCRC(b[:]))<<56)
}

// sysfsDS18B20 reads through the kernel; each read converts this sensor
// alone (see package w1 for why).
type sysfsDS18B20 struct {
	dir, id string
}

func openSysfs(ctx context.Context, dir, id string, res int, setRes bool) (sensors.Driver, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s in %s: %w", id, dir, w1.ErrNotFound)
		}
		return nil, err
	}
	if setRes {
		bits, ok, err := w1.Resolution(dir, id)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: resolution: %w", id, err)
		case !ok:
			return nil, fmt.Errorf("%s: resolution: this kernel has no resolution file; drop the option or use a DS2482 bridge", id)
		case bits != res:
			if err := w1.SetResolution(dir, id, res); err != nil {
				return nil, fmt.Errorf("%s: resolution %d: %w", id, res, err)
			}
		}
	}
	return &sysfsDS18B20{dir: dir, id: id}, nil
}

// Read blocks in the kernel for the conversion and cannot be interrupted;
// the scheduler abandons it at the deadline.
func (s *sysfsDS18B20) Read(ctx context.Context) (sensors.Values, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := w1.Read(s.dir, s.id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.id, err)
	}
	v := sensors.Values{"temperature": t}
	return v, checkRanges("DS18B20", v, ds18b20Limits...)
}

func (s *sysfsDS18B20) Close() error { return nil }

// bridgedDS18B20 reads through a shared DS2482 bridge.
type bridgedDS18B20 struct {
	b    *bridge
	id   string
	addr onewire.Address
	res  int
}

func (d *bridgedDS18B20) Read(ctx context.Context) (sensors.Values, error) {
	if err := d.b.convert(ctx); err != nil {
		return nil, fmt.Errorf("%s: convert: %w", d.id, err)
	}
	spad, err := d.b.scratchpad(ctx, d.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.id, err)
	}
	t, err := scratchpadCelsius(spad, byte(d.addr), d.res)
	var re *ResolutionError
	if errors.As(err, &re) {
		// The bridge times conversions by the resolutions it set; a
		// sensor back at 12 bits is read mid-conversion, and its
		// scratchpad holds the previous temperature. Set it again.
		if aerr := d.b.attach(ctx, d.addr, d.res); aerr != nil {
			err = fmt.Errorf("%w; setting it again: %w", err, aerr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.id, err)
	}
	v := sensors.Values{"temperature": t}
	return v, checkRanges("DS18B20", v, ds18b20Limits...)
}

func (d *bridgedDS18B20) Close() error {
	d.b.detach(d.addr)
	return nil
}

// ResolutionError is a scratchpad whose configuration register is not
// the resolution kitd set: the sensor reset (to its power-on 12 bits, or
// the EEPROM's setting), and a conversion timed for the set resolution
// reads the previous temperature.
type ResolutionError struct{ Got, Want int }

func (e *ResolutionError) Error() string {
	return fmt.Sprintf("configuration register says %d bits, %d were set: the sensor reset, and its scratchpad may hold an older conversion", e.Got, e.Want)
}

// scratchpadCelsius validates a scratchpad and converts its temperature
// (datasheet Table 1 and Figure 4). The known bad signatures are errors:
// all ones (nothing answered: an open data line, which would read
// -0.0625 °C), all zeros (data line held low: 0 °C with a valid CRC), a
// CRC mismatch, a resolution other than res (ResolutionError), 85 °C
// (the power-on value: no conversion happened) and 127.94 °C.
func scratchpadCelsius(spad [9]byte, family byte, res int) (float64, error) {
	switch spad {
	case [9]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}:
		return 0, w1.ErrOpenLine
	case [9]byte{}:
		return 0, w1.ErrAllZero
	}
	if c := onewire.CalcCRC(spad[:8]); c != spad[8] {
		return 0, fmt.Errorf("scratchpad CRC 0x%02x, want 0x%02x: %w", spad[8], c, w1.ErrCRC)
	}
	if got := 9 + int(spad[4]>>5&3); family != 0x10 && got != res {
		return 0, &ResolutionError{Got: got, Want: res}
	}
	raw := int16(spad[1])<<8 | int16(spad[0])
	if family == 0x10 {
		// DS18S20: 0.5 °C steps, refined by COUNT_REMAIN (datasheet
		// "Operation - Measuring Temperature"); power-on value 0x00AA.
		if raw == 0x00AA {
			return 0, w1.ErrPowerOn
		}
		return float64(raw>>1) - 0.25 + float64(16-int(spad[6]))/16, nil
	}
	switch uint16(raw) {
	case 0x0550:
		return 0, w1.ErrPowerOn
	case 0x07FF:
		return 0, w1.ErrBadValue
	}
	// Below 12 bits the low bits are undefined (datasheet Figure 4).
	raw &^= int16(1)<<(12-res) - 1
	return float64(raw) / 16, nil
}
