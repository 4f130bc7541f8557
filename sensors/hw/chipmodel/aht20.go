package chipmodel

import (
	"errors"
	"sync"

	"github.com/kitd-dev/kitd/sensors/sensirion"
)

// AHT20 models Aosong's AHT20 (datasheet v1.1 sections 5.3 and 5.4):
// status 0x71 reads bit 3 (calibrated) and bit 7 (busy); 0xBE 0x08 0x00
// calibrates; 0xAC 0x33 0x00 triggers a measurement, during which reads
// show busy; then a 7-byte read returns status, 20-bit humidity, 20-bit
// temperature and a CRC-8 (polynomial 0x31, init 0xFF). The busy time is
// counted in reads (BusyReads), not time: periph's driver sleeps on the
// wall clock, which a model cannot see, and what it must get right is
// to poll the busy bit. Reset is a power cycle that lost the calibration
// (status 0x00 until 0xBE).
type AHT20 struct {
	mu sync.Mutex
	// BusyReads is how many reads after a trigger still show busy.
	BusyReads  int
	calibrated bool
	busyLeft   int
	measured   bool
	rawH, rawT uint32
}

// NewAHT20 returns a calibrated sensor whose measurements are the ones
// periph's authors recorded (19.4458 °C, 45.82824 %RH).
func NewAHT20() *AHT20 {
	return &AHT20{BusyReads: 2, calibrated: true, rawH: 0x75520, rawT: 0x58E40}
}

// Reset is a power cycle that lost the calibration.
func (a *AHT20) Reset() {
	a.mu.Lock()
	a.calibrated, a.busyLeft, a.measured = false, 0, false
	a.mu.Unlock()
}

func (a *AHT20) status() byte {
	s := byte(0x10)
	if a.calibrated {
		s |= 0x08
	}
	if a.busyLeft > 0 {
		s |= 0x80
	}
	return s
}

// Tx implements Device.
func (a *AHT20) Tx(w, r []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case len(w) == 0:
	case len(w) == 1 && w[0] == 0x71:
	case len(w) == 1 && w[0] == 0xBA:
		a.calibrated, a.busyLeft = false, 0
	case len(w) == 3 && w[0] == 0xBE:
		a.calibrated = true
	case len(w) == 3 && w[0] == 0xAC && w[1] == 0x33:
		a.busyLeft, a.measured = a.BusyReads, a.calibrated
	default:
		return errors.New("aht20: unknown command")
	}
	if len(r) == 0 {
		return nil
	}
	d := [7]byte{a.status()}
	if a.busyLeft > 0 {
		a.busyLeft--
	} else if a.measured {
		d[1], d[2] = byte(a.rawH>>12), byte(a.rawH>>4)
		d[3] = byte(a.rawH<<4) | byte(a.rawT>>16&0xF)
		d[4], d[5] = byte(a.rawT>>8), byte(a.rawT)
	}
	d[6] = sensirion.CRC8(d[:6])
	copy(r, d[:])
	return nil
}
