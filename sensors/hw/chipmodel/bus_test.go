package chipmodel

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestBusAddressing(t *testing.T) {
	c := &Clock{}
	b := NewBus("b")
	b.Clock = c
	m := NewMux()
	b.Add(0x70, m)
	m.Add(2, 0x23, NewBH1750(c))
	if err := b.Tx(0x23, []byte{0x01}, nil); !errors.Is(err, syscall.EREMOTEIO) {
		t.Fatalf("no channel selected: %v", err)
	}
	if err := b.Tx(0x70, []byte{1 << 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Tx(0x23, []byte{0x01}, nil); err != nil {
		t.Fatalf("channel 2 selected: %v", err)
	}
	b.Add(0x23, NewBH1750(c))
	if err := b.Tx(0x23, []byte{0x01}, nil); !errors.Is(err, ErrCollision) {
		t.Fatalf("two chips: %v", err)
	}
	// 9 bit times a byte at 100 kHz: address and 1 byte.
	if got := c.Now(); got != 4*180e3 {
		t.Errorf("bus time %v after 4 one-byte writes", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Sleep(ctx, 1); err == nil {
		t.Error("Sleep on an ended context")
	}
}

// The ADS1x15 model: OS reads 0 while converting, the conversion
// register keeps the previous result until the conversion ends.
func TestADS1115Model(t *testing.T) {
	c := &Clock{}
	a := NewADS1115(c)
	a.SetInput(0, 2.048)
	if err := a.Tx([]byte{0x01, 0xC3, 0x83}, nil); err != nil { // AIN0, ±4.096 V, 128 SPS
		t.Fatal(err)
	}
	r := make([]byte, 2)
	a.Tx([]byte{0x01}, r)
	if r[0]&0x80 != 0 {
		t.Fatal("OS reads done at once")
	}
	a.Tx([]byte{0x00}, r)
	if r[0] != 0 || r[1] != 0 {
		t.Fatalf("conversion register %x before the end", r)
	}
	c.Advance(7812500) // 1/128 s
	a.Tx([]byte{0x01}, r)
	if r[0]&0x80 == 0 {
		t.Fatal("OS still 0 after 1/DR")
	}
	a.Tx([]byte{0x00}, r)
	if r[0] != 0x40 || r[1] != 0 {
		t.Fatalf("conversion register %x, want 4000", r)
	}
}

// The BMP180 model: SCO reads 1 for the conversion time, the result
// registers hold the previous result (power-on 0x800000) until it ends,
// and a soft reset returns them to power-on.
func TestBMP180Model(t *testing.T) {
	c := &Clock{}
	m := NewBMP180(c, make([]byte, 22))
	m.SetRaw(27898, 23843)
	r := make([]byte, 3)
	read := func(reg byte, n int) []byte {
		t.Helper()
		if err := m.Tx([]byte{reg}, r[:n]); err != nil {
			t.Fatal(err)
		}
		return r[:n]
	}
	if id := read(0xD0, 1)[0]; id != 0x55 {
		t.Fatalf("chip id 0x%02x", id)
	}
	for _, tc := range []struct {
		cmd  byte
		time time.Duration
		want []byte
	}{
		{0x2E, 4500 * time.Microsecond, []byte{0x6C, 0xFA}},            // UT 27898
		{0x34, 4500 * time.Microsecond, []byte{0x5D, 0x23, 0x00}},      // UP 23843, oss 0
		{0x34 | 3<<6, 25500 * time.Microsecond, []byte{0x5D, 0x23, 0}}, // oss 3: UP<<5 over 19 bits
	} {
		if tc.cmd>>6 == 3 {
			m.SetRaw(27898, 23843<<3)
		}
		before := append([]byte(nil), read(0xF6, len(tc.want))...)
		if err := m.Tx([]byte{0xF4, tc.cmd}, nil); err != nil {
			t.Fatal(err)
		}
		c.Advance(tc.time - 1)
		if ctrl := read(0xF4, 1)[0]; ctrl != tc.cmd {
			t.Errorf("0x%02x: ctrl_meas 0x%02x before the conversion time, want SCO set", tc.cmd, ctrl)
		}
		if got := read(0xF6, len(tc.want)); string(got) != string(before) {
			t.Errorf("0x%02x: result % x before the conversion time, want the previous % x", tc.cmd, got, before)
		}
		c.Advance(1)
		if ctrl := read(0xF4, 1)[0]; ctrl != tc.cmd&^0x20 {
			t.Errorf("0x%02x: ctrl_meas 0x%02x after the conversion time, want SCO clear", tc.cmd, ctrl)
		}
		if got := read(0xF6, len(tc.want)); string(got) != string(tc.want) {
			t.Errorf("0x%02x: result % x, want % x", tc.cmd, got, tc.want)
		}
	}
	if err := m.Tx([]byte{0xE0, 0xB6}, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(0xF4, 3); got[0] != 0 || got[2] != 0x80 {
		t.Errorf("after a soft reset 0xF4..0xF6 % x, want 00 .. 80", got)
	}
}
