package chipmodel

import (
	"errors"
	"sync"
	"time"

	"github.com/kitd-dev/kitd/sensors/sensirion"
)

// SHT models Sensirion's SHT3x (2-byte commands; datasheet SHT3x-DIS
// Tables 4, 9, 13 and 17) or SHT4x (1-byte commands; SHT4x datasheet
// section 4.5): a command is written, and its response can be read only
// after its maximum execution time (single-shot measurement without
// clock stretching: SHT3x 15.5/6.5/4.5 ms, SHT4x 8.3/4.5/1.6 ms;
// reset 1.5 ms / 1 ms); a read before that is not acknowledged, as the
// sensors do. Responses are 16-bit words each followed by a CRC-8.
type SHT struct {
	clock *Clock
	four  bool

	mu        sync.Mutex
	words     []uint16
	readyAt   time.Duration
	rawT      uint16
	rawRH     uint16
	earlyRead int
}

// NewSHT3x returns an SHT3x model; NewSHT4x an SHT4x. Both measure the
// raw words 0x6666 (25 °C) and 0x8000 (50 %RH) until SetRaw.
func NewSHT3x(c *Clock) *SHT { return &SHT{clock: c, rawT: 0x6666, rawRH: 0x8000} }

// NewSHT4x returns an SHT4x model.
func NewSHT4x(c *Clock) *SHT { return &SHT{clock: c, four: true, rawT: 0x6666, rawRH: 0x8000} }

// SetRaw sets the raw temperature and humidity words measured.
func (s *SHT) SetRaw(t, rh uint16) {
	s.mu.Lock()
	s.rawT, s.rawRH = t, rh
	s.mu.Unlock()
}

// EarlyReads counts reads before a command's execution time.
func (s *SHT) EarlyReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.earlyRead
}

var errSHTNack = errors.New("sht: not acknowledged")

// Tx implements Device.
func (s *SHT) Tx(w, r []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if len(w) > 0 {
		if err := s.command(w, now); err != nil {
			return err
		}
	}
	if len(r) == 0 {
		return nil
	}
	if s.words == nil {
		return errSHTNack
	}
	if now < s.readyAt {
		s.earlyRead++
		return errSHTNack
	}
	for i, v := range s.words {
		if 3*i+2 >= len(r) {
			break
		}
		b := []byte{byte(v >> 8), byte(v)}
		r[3*i], r[3*i+1], r[3*i+2] = b[0], b[1], sensirion.CRC8(b)
	}
	s.words = nil
	return nil
}

func (s *SHT) command(w []byte, now time.Duration) error {
	ms := func(f float64) time.Duration { return now + time.Duration(f*float64(time.Millisecond)) }
	measure := []uint16{s.rawT, s.rawRH}
	s.words = nil
	if s.four {
		if len(w) != 1 {
			return errSHTNack
		}
		switch w[0] {
		case 0x94:
			s.readyAt = ms(1)
		case 0x89:
			s.words, s.readyAt = []uint16{0x0bad, 0xcafe}, ms(1)
		case 0xFD:
			s.words, s.readyAt = measure, ms(8.3)
		case 0xF6:
			s.words, s.readyAt = measure, ms(4.5)
		case 0xE0:
			s.words, s.readyAt = measure, ms(1.6)
		default:
			return errSHTNack
		}
		return nil
	}
	if len(w) != 2 {
		return errSHTNack
	}
	switch uint16(w[0])<<8 | uint16(w[1]) {
	case 0x30A2:
		s.readyAt = ms(1.5)
	case 0xF32D:
		s.words = []uint16{0x8010}
	case 0x2400:
		s.words, s.readyAt = measure, ms(15.5)
	case 0x240B:
		s.words, s.readyAt = measure, ms(6.5)
	case 0x2416:
		s.words, s.readyAt = measure, ms(4.5)
	default:
		return errSHTNack
	}
	return nil
}
