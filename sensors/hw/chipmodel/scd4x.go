package chipmodel

import (
	"errors"
	"sync"
	"time"

	"github.com/kitd-dev/kitd/sensors/sensirion"
)

// SCD4x models an SCD40/SCD41 (datasheet sections 3.5 to 3.9): a command
// is a 2-byte write; its response can be read only after its execution
// time (1 ms for read commands, 500 ms for stop; before that the read is
// not acknowledged). start_periodic_measurement makes a measurement
// ready 5 s later and every 5 s after; get_data_ready_status reports one
// not yet read (low 11 bits non-zero); read_measurement returns it and
// clears the flag. While measuring periodically the sensor ignores (does
// not acknowledge) every command but read_measurement,
// get_data_ready_status and stop_periodic_measurement. Reset returns it
// to idle, as after a power cycle.
type SCD4x struct {
	clock *Clock

	mu        sync.Mutex
	periodic  bool
	startedAt time.Duration
	readUpTo  int // measurements read so far
	cmd       uint16
	readyAt   time.Duration
	busyUntil time.Duration
	meas      [3]uint16
	earlyRead int
}

// NewSCD4x returns an idle sensor whose measurements are the datasheet's
// example (500 ppm, 25 °C, 37 %RH) until SetMeasurement.
func NewSCD4x(c *Clock) *SCD4x {
	return &SCD4x{clock: c, meas: [3]uint16{0x01f4, 0x6667, 0x5eb9}}
}

// SetMeasurement sets the raw words of the next measurements.
func (s *SCD4x) SetMeasurement(co2, t, rh uint16) {
	s.mu.Lock()
	s.meas = [3]uint16{co2, t, rh}
	s.mu.Unlock()
}

// Reset powers the sensor off and on: idle, nothing pending.
func (s *SCD4x) Reset() {
	s.mu.Lock()
	s.periodic, s.cmd, s.readUpTo = false, 0, 0
	s.mu.Unlock()
}

// EarlyReads counts reads attempted before a command's execution time.
func (s *SCD4x) EarlyReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.earlyRead
}

// measured is how many measurements the running periodic mode made.
func (s *SCD4x) measured() int {
	if !s.periodic {
		return 0
	}
	return int((s.clock.Now() - s.startedAt) / (5 * time.Second))
}

var errSCDNack = errors.New("scd4x: not acknowledged")

// Tx implements Device.
func (s *SCD4x) Tx(w, r []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if len(w) > 0 {
		if now < s.busyUntil {
			return errSCDNack
		}
		if len(w) != 2 {
			return errors.New("scd4x model: only commands without arguments are modelled")
		}
		if err := s.command(uint16(w[0])<<8|uint16(w[1]), now); err != nil {
			return err
		}
	}
	if len(r) == 0 {
		return nil
	}
	if s.cmd == 0 {
		return errSCDNack
	}
	if now < s.readyAt {
		s.earlyRead++
		return errSCDNack
	}
	var words []uint16
	switch s.cmd {
	case 0xe4b8:
		ready := uint16(0x8000)
		if s.measured() > s.readUpTo {
			ready |= 0x0006
		}
		words = []uint16{ready}
	case 0xec05:
		if s.measured() <= s.readUpTo {
			return errSCDNack
		}
		s.readUpTo = s.measured()
		words = s.meas[:]
	case 0x3682:
		words = []uint16{0xf896, 0x9f07, 0x3bbe}
	default:
		return errSCDNack
	}
	s.cmd = 0
	for i, v := range words {
		if 3*i+2 >= len(r) {
			break
		}
		b := []byte{byte(v >> 8), byte(v)}
		r[3*i], r[3*i+1], r[3*i+2] = b[0], b[1], sensirion.CRC8(b)
	}
	return nil
}

func (s *SCD4x) command(c uint16, now time.Duration) error {
	if s.periodic && c != 0xec05 && c != 0xe4b8 && c != 0x3f86 {
		return errSCDNack
	}
	s.cmd, s.readyAt = c, now+time.Millisecond
	switch c {
	case 0x21b1:
		s.periodic, s.startedAt, s.readUpTo = true, now, 0
		s.cmd = 0
	case 0x3f86:
		s.periodic, s.cmd = false, 0
		s.busyUntil = now + 500*time.Millisecond
	case 0xe4b8, 0xec05, 0x3682:
	default:
		return errSCDNack
	}
	return nil
}
