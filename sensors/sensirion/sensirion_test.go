package sensirion

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The SHT3x datasheet's CRC example (section 4.12, Table 20).
func TestCRC8DatasheetExample(t *testing.T) {
	if got := CRC8([]byte{0xBE, 0xEF}); got != 0x92 {
		t.Fatalf("CRC8(0xBEEF) = 0x%02X, want 0x92", got)
	}
}

func TestWords(t *testing.T) {
	w, err := Words([]byte{0xBE, 0xEF, 0x92, 0x00, 0x00, 0x81})
	if err != nil || len(w) != 2 || w[0] != 0xBEEF || w[1] != 0 {
		t.Fatalf("Words = %v, %v", w, err)
	}
	_, err = Words([]byte{0xBE, 0xEF, 0x93})
	var ce *CRCError
	if !errors.As(err, &ce) || ce.Word != 0 || ce.Received != 0x93 || ce.Calculated != 0x92 {
		t.Fatalf("corrupt CRC: %v", err)
	}
	if _, err := Words([]byte{0xBE, 0xEF}); err == nil {
		t.Fatal("a partial word must be an error")
	}
}

// The datasheets' formula at its ends and its middle.
func TestTemperature(t *testing.T) {
	for _, c := range []struct {
		ticks uint16
		want  float64
	}{{0, -45}, {0xFFFF, 130}, {0x6666, 25}} {
		if got := Temperature(c.ticks); got != c.want {
			t.Errorf("Temperature(0x%04X) = %v, want %v", c.ticks, got, c.want)
		}
	}
}

func TestSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
