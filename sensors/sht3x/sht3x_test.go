package sht3x

import (
	"context"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

func TestNewI2CRejects(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true}
	if _, err := NewI2C(context.Background(), bus, 0x40, nil); err == nil || !strings.Contains(err.Error(), "0x40") {
		t.Errorf("address: %v", err)
	}
	if _, err := NewI2C(context.Background(), bus, 0x44, &Opts{Repeatability: 7}); err == nil {
		t.Error("repeatability 7 accepted")
	}
	if Medium.String() != "medium" || Repeatability(9).String() != "Repeatability(9)" {
		t.Error("String")
	}
}

// Humidity is exact in integer arithmetic at both ends.
func TestHumidity(t *testing.T) {
	if humidity(0) != 0 || humidity(0xFFFF) != 100*100000 {
		t.Errorf("humidity ends: %d, %d", humidity(0), humidity(0xFFFF))
	}
}
