package chipmodel

import (
	"context"
	"errors"
	"syscall"
	"testing"
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
