package ads1x15

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

func TestNewI2CRejects(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true}
	for _, c := range []struct {
		addr uint16
		chip Chip
		opts Opts
		want string
	}{
		{0x40, ADS1115, Opts{}, "0x40"},
		{0x48, ADS1115, Opts{Channel: 4}, "channel 4"},
		{0x48, ADS1115, Opts{FullScale: 5}, "full scale 5"},
		{0x48, ADS1015, Opts{DataRate: 860}, "ADS1015 has no data rate 860"},
	} {
		if _, err := NewI2C(bus, c.addr, c.chip, &c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c, err, c.want)
		}
	}
}

// OS never reads 1: the read ends with a NotReadyError after twice the
// nominal period (plus 2 ms), bounded even without a deadline.
func TestReadNotReady(t *testing.T) {
	ops := []i2ctest.IO{
		{Addr: 0x48, W: []byte{0x01}, R: []byte{0x85, 0x83}},
		{Addr: 0x48, W: []byte{0x01, 0xF5, 0xE3}}, // AIN3, 2.048 V, 860 SPS
	}
	var waited time.Duration
	for waited = time.Second / 860; waited < 2*time.Second/860+2*time.Millisecond; waited += 200 * time.Microsecond {
		ops = append(ops, i2ctest.IO{Addr: 0x48, W: []byte{0x01}, R: []byte{0x75, 0xE3}})
	}
	ops = append(ops, i2ctest.IO{Addr: 0x48, W: []byte{0x01}, R: []byte{0x75, 0xE3}})
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	var slept time.Duration
	d, err := NewI2C(bus, 0x48, ADS1115, &Opts{Channel: 3, FullScale: 2.048, DataRate: 860, Sleep: func(_ context.Context, d time.Duration) error {
		slept += d
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Read(context.Background())
	var nr *NotReadyError
	if !errors.As(err, &nr) || nr.Waited != slept {
		t.Fatalf("err = %v (slept %v)", err, slept)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}
