package hw

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/sensors/sensirion"
	"github.com/kitd-dev/kitd/sensors/w1"
	"periph.io/x/conn/v3/i2c"
)

// ScanResult is what a board has: its I2C buses with the addresses that
// answer, and the kernel's 1-Wire devices.
type ScanResult struct {
	Buses []BusScan
	// W1Dir is where the 1-Wire devices were listed.
	W1Dir string
	W1    []w1.Device
	// W1Err is set when W1Dir exists but cannot be read.
	W1Err error
}

// BusScan is one I2C bus.
type BusScan struct {
	Name string
	// Err is set when the bus could not be opened; Devices is then empty.
	Err     error
	Devices []Device
}

// Device is an address that answered, and what it is.
type Device struct {
	Addr uint16
	// Chip is the identified chip, "" when unknown; Guess is true when it
	// is known only from the address (the chip has no ID register).
	Chip  string
	Guess bool
	// How says what identified it, e.g. "chip id 0x60 at 0xD0".
	How string
}

// Scan lists the I2C buses, probes every address 0x03..0x77 on each with
// a one-byte read (as i2cdetect -r does: safer than a quick write for
// most chips), identifies the chips with ID registers, and lists the
// 1-Wire devices in w1Dir. Probing talks to the chips: with the agent
// running, a sensor read that coincides with the scan may fail once.
// The error is ctx's; everything else is reported in the result.
func (h *Host) Scan(ctx context.Context, w1Dir string) (ScanResult, error) {
	var r ScanResult
	names, err := h.ListBuses()
	if err != nil {
		r.Buses = append(r.Buses, BusScan{Name: "/dev/i2c-*", Err: err})
	}
	for _, name := range names {
		bs := BusScan{Name: name}
		b, err := h.bus(name)
		if err != nil {
			bs.Err = err
		} else if bs.Devices, err = scanBus(ctx, b, h.Sleep); err != nil {
			return r, err
		}
		r.Buses = append(r.Buses, bs)
	}
	r.W1Dir = w1Dir
	r.W1, r.W1Err = w1.List(w1Dir)
	return r, ctx.Err()
}

// sensirionAddrs answer no bare read (a Sensirion chip NACKs a read with
// no command pending), so they are asked directly.
var sensirionAddrs = map[uint16]bool{0x44: true, 0x45: true, 0x46: true, 0x62: true}

func scanBus(ctx context.Context, b i2c.Bus, sleep func(context.Context, time.Duration) error) ([]Device, error) {
	var out []Device
	for addr := uint16(0x03); addr <= 0x77; addr++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var one [1]byte
		answered := b.Tx(addr, nil, one[:]) == nil
		if !answered && !sensirionAddrs[addr] {
			continue
		}
		d, ok := identify(ctx, b, addr, sleep)
		if !ok && !answered {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// bmxIDs are the chip ids at register 0xD0 of Bosch's sensors.
var bmxIDs = map[byte]string{0x55: "BMP180", 0x56: "BMP280", 0x57: "BMP280", 0x58: "BMP280", 0x60: "BME280", 0x61: "BME680"}

// identify asks the chips that can be asked; ok is false when nothing
// answered the question.
func identify(ctx context.Context, b i2c.Bus, addr uint16, sleep func(context.Context, time.Duration) error) (Device, bool) {
	d := Device{Addr: addr}
	switch {
	case addr == 0x76 || addr == 0x77:
		var id [1]byte
		err := b.Tx(addr, []byte{0xD0}, id[:])
		if chip, ok := bmxIDs[id[0]]; ok && err == nil {
			d.Chip, d.How = chip, fmt.Sprintf("chip id 0x%02X at 0xD0", id[0])
			return d, true
		}
		d.Chip, d.Guess, d.How = "PCA9548", true, "by address; no Bosch chip id at 0xD0"
	case addr == 0x44 || addr == 0x45 || addr == 0x46:
		var r [3]byte
		if addr != 0x46 && b.Tx(addr, []byte{0xF3, 0x2D}, r[:]) == nil {
			if w, err := sensirion.Words(r[:]); err == nil {
				d.Chip, d.How = "SHT3x", fmt.Sprintf("status 0x%04X, CRC ok", w[0])
				return d, true
			}
		}
		var s [6]byte
		if b.Tx(addr, []byte{0x89}, nil) == nil && sleep(ctx, 2*time.Millisecond) == nil && b.Tx(addr, nil, s[:]) == nil {
			if w, err := sensirion.Words(s[:]); err == nil {
				d.Chip, d.How = "SHT4x", fmt.Sprintf("serial %04X%04X, CRC ok", w[0], w[1])
				return d, true
			}
		}
		return d, false
	case addr == 0x62:
		var r [9]byte
		if b.Tx(addr, []byte{0x36, 0x82}, nil) == nil && sleep(ctx, time.Millisecond) == nil && b.Tx(addr, nil, r[:]) == nil {
			if w, err := sensirion.Words(r[:]); err == nil {
				d.Chip, d.How = "SCD4x", fmt.Sprintf("serial %04X%04X%04X, CRC ok", w[0], w[1], w[2])
				return d, true
			}
		}
		// A measuring SCD4x answers only measurement commands.
		d.Chip, d.Guess, d.How = "SCD4x", true, "by address; busy measuring, or not an SCD4x"
		return d, false
	case addr == 0x38:
		var st [1]byte
		if b.Tx(addr, []byte{0x71}, st[:]) == nil && st[0]&0x08 != 0 {
			d.Chip, d.How = "AHT20", fmt.Sprintf("status 0x%02X, calibrated", st[0])
			return d, true
		}
		d.Chip, d.Guess, d.How = "AHT20", true, "by address"
	case addr >= 0x48 && addr <= 0x4b:
		var cfg [2]byte
		if b.Tx(addr, []byte{0x01}, cfg[:]) == nil && binary.BigEndian.Uint16(cfg[:])&0x0003 == 0x0003 {
			d.Chip, d.Guess, d.How = "ADS1115/ADS1015", true, fmt.Sprintf("config 0x%04X; or an INA219", binary.BigEndian.Uint16(cfg[:]))
			return d, true
		}
		d.Chip, d.Guess, d.How = "INA219", true, "by address; or an ADS1x15"
	case addr >= 0x40 && addr <= 0x4f:
		d.Chip, d.Guess, d.How = "INA219", true, "by address"
	case addr == 0x23 || addr == 0x5c:
		d.Chip, d.Guess, d.How = "BH1750", true, "by address; it has no ID register"
	case addr == 0x18 || addr == 0x19:
		d.Chip, d.Guess, d.How = "DS2482", true, "by address"
	case addr >= 0x70 && addr <= 0x75:
		d.Chip, d.Guess, d.How = "PCA9548", true, "by address"
	}
	return d, d.Chip != "" && !d.Guess
}
