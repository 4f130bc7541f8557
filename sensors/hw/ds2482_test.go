package hw

import (
	"fmt"
	"sync"
	"syscall"

	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/physic"
)

// ds2482 emulates a DS2482-100 (datasheet 19-4933) with DS18B20s on its
// 1-Wire side, as an i2c.Bus: periph's ds248x driver runs against it
// unchanged, byte for byte, so the whole path (bridge setup, Match ROM,
// strong pull-up, scratchpad reads) is exercised.
type ds2482 struct {
	mu    sync.Mutex
	addr  uint16
	ptr   byte // read pointer: 0xF0 status, 0xE1 data, 0xC3 config
	conf  byte
	data  byte
	reset bool // RST bit: set by a device reset, cleared by a config write
	ppd   bool // presence pulse detected at the last 1-Wire reset
	// sensors by ROM code; selected ones answer function commands.
	sensors map[onewire.Address]*ds18b20Sim
	// 1-Wire protocol state since the last 1-Wire reset.
	rom      []byte // Match ROM address bytes received so far
	state    string // "rom", "match", "func", "write", "read"
	selected []*ds18b20Sim
	wbuf     []byte
	rpos     int

	// conversions counts Convert T commands; strong counts those sent
	// with the strong pull-up armed.
	conversions, strong int
	// nack makes every I2C transaction fail (the bridge unplugged).
	nack bool
	txs  int
}

// ds18b20Sim is one DS18B20: its scratchpad and what its next conversion
// will read.
type ds18b20Sim struct {
	spad [9]byte
	next int16 // raw temperature the next Convert T stores
	// Faults: never convert (the power-on value stays), answer all zero
	// (data line held low), corrupt the CRC.
	noConvert, allZero, badCRC bool
}

func newDS18B20Sim() *ds18b20Sim {
	s := &ds18b20Sim{}
	// Power-on scratchpad: 85 °C, TH 75, TL 70, 12 bits (datasheet
	// Figure 7).
	s.spad = [9]byte{0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10}
	s.spad[8] = onewire.CalcCRC(s.spad[:8])
	return s
}

func newDS2482(addr uint16) *ds2482 {
	return &ds2482{addr: addr, sensors: map[onewire.Address]*ds18b20Sim{}}
}

func (d *ds2482) String() string                    { return "ds2482-sim" }
func (d *ds2482) SetSpeed(f physic.Frequency) error { return nil }
func (d *ds2482) Close() error                      { return nil }

// status register: 1WB (0, never busy), PPD, SD, LL, RST.
func (d *ds2482) status() byte {
	s := byte(0x08) // LL: the line is high
	if d.ppd {
		s |= 0x02
	}
	if d.reset {
		s |= 0x10
	}
	return s
}

func (d *ds2482) Tx(addr uint16, w, r []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txs++
	if addr != d.addr || d.nack {
		return fmt.Errorf("sysfs-i2c: %w", syscall.EREMOTEIO)
	}
	if len(w) > 0 {
		switch w[0] {
		case 0xF0: // Device Reset
			d.reset, d.conf, d.ptr, d.ppd = true, 0, 0xF0, false
		case 0xE1: // Set Read Pointer; only 0xF0, 0xE1, 0xC3 exist on a -100
			if len(w) != 2 || (w[1] != 0xF0 && w[1] != 0xE1 && w[1] != 0xC3) {
				return fmt.Errorf("sysfs-i2c: %w", syscall.EREMOTEIO)
			}
			d.ptr = w[1]
		case 0xD2: // Write Configuration: low nibble, high nibble its complement
			if len(w) != 2 || w[1]>>4 != ^w[1]&0x0F {
				return fmt.Errorf("sysfs-i2c: %w", syscall.EREMOTEIO)
			}
			d.conf, d.reset, d.ptr = w[1]&0x0F, false, 0xC3
		case 0xB4: // 1-Wire Reset
			d.state, d.rom, d.selected, d.ptr = "rom", nil, nil, 0xF0
			d.ppd = len(d.sensors) > 0
			d.conf &^= 0x04 // SPU clears after the next 1-Wire activity
		case 0xA5: // 1-Wire Write Byte
			if len(w) != 2 {
				return fmt.Errorf("ds2482 sim: write byte without data")
			}
			d.writeByte(w[1])
			d.ptr = 0xF0
		case 0x96: // 1-Wire Read Byte
			d.data = d.readByte()
			d.ptr = 0xF0
		default:
			return fmt.Errorf("ds2482 sim: unexpected command 0x%02X", w[0])
		}
	}
	for i := range r {
		switch d.ptr {
		case 0xF0:
			r[i] = d.status()
		case 0xE1:
			r[i] = d.data
		case 0xC3:
			r[i] = d.conf
		}
	}
	return nil
}

func (d *ds2482) writeByte(b byte) {
	switch d.state {
	case "rom":
		switch b {
		case 0xCC: // Skip ROM: every sensor
			for _, s := range d.sensors {
				d.selected = append(d.selected, s)
			}
			d.state = "func"
		case 0x55: // Match ROM
			d.state = "match"
		}
	case "match":
		d.rom = append(d.rom, b)
		if len(d.rom) == 8 {
			var a onewire.Address
			for i, x := range d.rom {
				a |= onewire.Address(x) << (8 * i)
			}
			if s, ok := d.sensors[a]; ok {
				d.selected = []*ds18b20Sim{s}
			}
			d.state = "func"
		}
	case "func":
		switch b {
		case 0x44: // Convert T
			d.conversions++
			if d.conf&0x04 != 0 {
				d.strong++
			}
			for _, s := range d.selected {
				if s.noConvert {
					continue
				}
				s.spad[0], s.spad[1] = byte(s.next), byte(s.next>>8)
				s.spad[8] = onewire.CalcCRC(s.spad[:8])
			}
		case 0xBE: // Read Scratchpad
			d.state, d.rpos = "read", 0
		case 0x4E: // Write Scratchpad: TH, TL, config
			d.state, d.wbuf = "write", nil
		case 0x48: // Copy Scratchpad to EEPROM
		}
	case "write":
		d.wbuf = append(d.wbuf, b)
		if len(d.wbuf) == 3 {
			for _, s := range d.selected {
				copy(s.spad[2:5], d.wbuf)
				s.spad[8] = onewire.CalcCRC(s.spad[:8])
			}
			d.state = "func"
		}
	}
}

// readByte is what the selected sensors put on the line: wired-AND, and
// all ones when nobody answers.
func (d *ds2482) readByte() byte {
	if d.state != "read" || d.rpos >= 9 {
		return 0xFF
	}
	v := byte(0xFF)
	for _, s := range d.selected {
		b := s.spad[d.rpos]
		switch {
		case s.allZero:
			b = 0
		case s.badCRC && d.rpos == 8:
			b ^= 0x01
		}
		v &= b
	}
	d.rpos++
	return v
}

func (d *ds2482) add(id string, next int16) *ds18b20Sim {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := newDS18B20Sim()
	s.next = next
	d.sensors[romAddress(id)] = s
	return s
}

func (d *ds2482) counts() (conversions, strong int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conversions, d.strong
}

func (d *ds2482) setNack(v bool) {
	d.mu.Lock()
	d.nack = v
	d.mu.Unlock()
}
