package chipmodel

import (
	"fmt"
	"sync"
	"syscall"
	"time"

	"periph.io/x/conn/v3/onewire"
)

// DS2482 models a DS2482-100 I2C-to-1-Wire bridge (datasheet 19-4933)
// with DS18B20s on its 1-Wire side, byte for byte, so periph's ds248x
// driver runs against it unchanged (bridge setup, Match ROM, strong
// pull-up, scratchpad reads). The bridge itself is never busy (1WB 0).
//
// With a Clock, a DS18B20's Convert T takes its resolution's maximum
// conversion time (DS18B20 datasheet Table 2: 93.75 ms at 9 bits up to
// 750 ms at 12); until then its scratchpad holds the previous
// temperature, as the chip's does. Without one, conversions are instant.
type DS2482 struct {
	clock *Clock

	mu   sync.Mutex
	ptr  byte // read pointer: 0xF0 status, 0xE1 data, 0xC3 config
	conf byte
	data byte
	rst  bool // RST bit: set by a device reset, cleared by a config write
	ppd  bool // presence pulse detected at the last 1-Wire reset
	// sensors by ROM code; selected ones answer function commands.
	sensors map[onewire.Address]*DS18B20
	// 1-Wire protocol state since the last 1-Wire reset.
	rom      []byte // Match ROM address bytes received so far
	state    string // "rom", "match", "func", "write", "read"
	selected []*DS18B20
	wbuf     []byte
	rpos     int

	conversions, strong int
	nack                bool
}

// DS18B20 is one thermometer on a DS2482. Set its fields before the
// test reads.
type DS18B20 struct {
	spad [9]byte
	// Next is the raw temperature the next conversion stores.
	Next int16
	// Faults: never convert (the power-on value stays), answer all zero
	// (data line held low), corrupt the CRC.
	NoConvert, AllZero, BadCRC bool
	doneAt                     time.Duration
	pending                    bool
	pendingT                   int16
}

// NewDS2482 returns a bridge at power-on with no sensors; c may be nil.
func NewDS2482(c *Clock) *DS2482 {
	return &DS2482{clock: c, sensors: map[onewire.Address]*DS18B20{}}
}

func (d *DS2482) now() time.Duration {
	if d.clock == nil {
		return 0
	}
	return d.clock.Now()
}

// Add puts a DS18B20 at power-on on the 1-Wire bus; its conversions
// read next.
func (d *DS2482) Add(a onewire.Address, next int16) *DS18B20 {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &DS18B20{Next: next}
	s.powerOn()
	d.sensors[a] = s
	return s
}

// powerOn sets the power-on scratchpad: 85 °C, TH 75, TL 70, 12 bits
// (datasheet Figure 7).
func (s *DS18B20) powerOn() {
	s.spad = [9]byte{0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10}
	s.spad[8] = onewire.CalcCRC(s.spad[:8])
	s.pending = false
}

// Reset power-cycles one sensor (a brown-out on a parasite-powered line).
func (d *DS2482) Reset(s *DS18B20) {
	d.mu.Lock()
	s.powerOn()
	d.mu.Unlock()
}

// Scratchpad returns a sensor's scratchpad.
func (d *DS2482) Scratchpad(s *DS18B20) [9]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.update(s)
	return s.spad
}

// Counts returns the Convert T commands seen, and how many of them had
// the strong pull-up armed.
func (d *DS2482) Counts() (conversions, strong int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conversions, d.strong
}

// SetNack makes every transaction fail (the bridge unplugged), or not.
func (d *DS2482) SetNack(v bool) {
	d.mu.Lock()
	d.nack = v
	d.mu.Unlock()
}

func (d *DS2482) update(s *DS18B20) {
	if s.pending && d.now() >= s.doneAt {
		s.pending = false
		s.spad[0], s.spad[1] = byte(s.pendingT), byte(s.pendingT>>8)
		s.spad[8] = onewire.CalcCRC(s.spad[:8])
	}
}

// status register: 1WB (0, never busy), PPD, SD, LL, RST.
func (d *DS2482) status() byte {
	s := byte(0x08) // LL: the line is high
	if d.ppd {
		s |= 0x02
	}
	if d.rst {
		s |= 0x10
	}
	return s
}

// Tx implements Device.
func (d *DS2482) Tx(w, r []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nack {
		return fmt.Errorf("chipmodel: %w", syscall.EREMOTEIO)
	}
	for _, s := range d.sensors {
		d.update(s)
	}
	if len(w) > 0 {
		switch w[0] {
		case 0xF0: // Device Reset
			d.rst, d.conf, d.ptr, d.ppd = true, 0, 0xF0, false
		case 0xE1: // Set Read Pointer; only 0xF0, 0xE1, 0xC3 exist on a -100
			if len(w) != 2 || (w[1] != 0xF0 && w[1] != 0xE1 && w[1] != 0xC3) {
				return fmt.Errorf("chipmodel: %w", syscall.EREMOTEIO)
			}
			d.ptr = w[1]
		case 0xD2: // Write Configuration: low nibble, high nibble its complement
			if len(w) != 2 || w[1]>>4 != ^w[1]&0x0F {
				return fmt.Errorf("chipmodel: %w", syscall.EREMOTEIO)
			}
			d.conf, d.rst, d.ptr = w[1]&0x0F, false, 0xC3
		case 0xB4: // 1-Wire Reset
			d.state, d.rom, d.selected, d.ptr = "rom", nil, nil, 0xF0
			d.ppd = len(d.sensors) > 0
			d.conf &^= 0x04 // SPU clears after the next 1-Wire activity
		case 0xA5: // 1-Wire Write Byte
			if len(w) != 2 {
				return fmt.Errorf("ds2482 model: write byte without data")
			}
			d.writeByte(w[1])
			d.ptr = 0xF0
		case 0x96: // 1-Wire Read Byte
			d.data = d.readByte()
			d.ptr = 0xF0
		default:
			return fmt.Errorf("ds2482 model: unexpected command 0x%02X", w[0])
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

// conversionTime is the DS18B20's maximum conversion time at the
// resolution its config byte sets.
func conversionTime(config byte) time.Duration {
	return 750 * time.Millisecond >> (3 - config>>5&3)
}

func (d *DS2482) writeByte(b byte) {
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
				d.selected = []*DS18B20{s}
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
				if s.NoConvert {
					continue
				}
				t := conversionTime(s.spad[4])
				if d.clock == nil {
					t = 0
				}
				s.pending, s.pendingT, s.doneAt = true, s.Next, d.now()+t
				d.update(s)
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
func (d *DS2482) readByte() byte {
	if d.state != "read" || d.rpos >= 9 {
		return 0xFF
	}
	v := byte(0xFF)
	for _, s := range d.selected {
		b := s.spad[d.rpos]
		switch {
		case s.AllZero:
			b = 0
		case s.BadCRC && d.rpos == 8:
			b ^= 0x01
		}
		v &= b
	}
	d.rpos++
	return v
}
