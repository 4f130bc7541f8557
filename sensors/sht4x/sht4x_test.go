package sht4x

import (
	"context"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

func TestNewI2CRejects(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true}
	if _, err := NewI2C(context.Background(), bus, 0x47, nil); err == nil || !strings.Contains(err.Error(), "0x47") {
		t.Errorf("address: %v", err)
	}
	if _, err := NewI2C(context.Background(), bus, 0x44, &Opts{Precision: 3}); err == nil {
		t.Error("precision 3 accepted")
	}
}

// The datasheet crops RH to 0..100 (section 4.6).
func TestHumidityCropped(t *testing.T) {
	for ticks, want := range map[uint16]int64{0: 0, 0xFFFF: 100 * 100000, 3145: 0, 55574: 100 * 100000} {
		if got := int64(humidity(ticks)); got < want-1 || got > want+1 {
			t.Errorf("humidity(%d) = %d, want %d", ticks, got, want)
		}
	}
}
