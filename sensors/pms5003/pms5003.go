package pms5003

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kitd-dev/kitd/sensors/serial"
)

// Opts are the sensor's settings.
type Opts struct {
	// MaxGarbage is how many bytes a read skips looking for a frame
	// before it gives up with a *serial.GarbageError; 0 means 256, a few
	// frames' worth: more is a wrong device or baud rate.
	MaxGarbage int
}

// DefaultOpts are used when New is given nil.
var DefaultOpts = Opts{MaxGarbage: 256}

// Commands, datasheet Appendix II.
var (
	cmdPassive = Command(0xE1, 0x0000)
	cmdRead    = Command(0xE2, 0x0000)
	header     = []byte{0x42, 0x4D}
)

// dataLen is a data frame's length field: 13 words and the check word.
const dataLen = 2*13 + 2

// maxFrames bounds the short frames (mode-change answers) a read passes
// over before its answer.
const maxFrames = 4

// Command builds a 7-byte command: 42 4D CMD DATAH DATAL LRCH LRCL, the
// check word being the sum of the bytes before it.
func Command(cmd byte, data uint16) []byte {
	b := []byte{0x42, 0x4D, cmd, byte(data >> 8), byte(data)}
	return binary.BigEndian.AppendUint16(b, sum(b))
}

func sum(b []byte) uint16 {
	var s uint16
	for _, c := range b {
		s += uint16(c)
	}
	return s
}

// Reading is one frame's values.
type Reading struct {
	// CF1 is PM1.0, PM2.5 and PM10 in µg/m³ under the factory's standard
	// particle; Atm under atmospheric environment.
	CF1, Atm [3]uint16
	// Counts are particles per 0.1 L above 0.3, 0.5, 1.0, 2.5, 5 and
	// 10 µm.
	Counts [6]uint16
	// Reserved is D13 (version and error code on the PMS7003).
	Reserved uint16
}

// Dev is a PMS5003 or PMS7003 on an open port.
type Dev struct {
	p    *serial.Port
	opts Opts
}

// New puts the sensor on p in passive mode. It does not wait for the
// sensor's answer to that: a sensor that missed the command is still in
// active mode and a read gets a fresh frame all the same.
func New(ctx context.Context, p *serial.Port, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	d := &Dev{p: p, opts: *opts}
	if d.opts.MaxGarbage == 0 {
		d.opts.MaxGarbage = DefaultOpts.MaxGarbage
	}
	if err := p.Write(ctx, cmdPassive); err != nil {
		return nil, fmt.Errorf("pms5003: passive mode: %w", err)
	}
	return d, nil
}

// Read asks for a frame and returns it, by ctx's deadline.
func (d *Dev) Read(ctx context.Context) (Reading, error) {
	if err := d.p.Flush(); err != nil {
		return Reading{}, err
	}
	if err := d.p.Write(ctx, cmdRead); err != nil {
		return Reading{}, fmt.Errorf("pms5003: read request: %w", err)
	}
	for range maxFrames {
		f, err := d.frame(ctx)
		if err != nil {
			return Reading{}, err
		}
		if len(f) == 4+dataLen {
			return Parse(f)
		}
	}
	return Reading{}, fmt.Errorf("pms5003: %d frames without data: not a PMS5003/PMS7003?", maxFrames)
}

// frame reads the next well-formed frame, header to check word, and
// verifies the check word.
func (d *Dev) frame(ctx context.Context) ([]byte, error) {
	f, err := d.readFrame(ctx)
	var ce *ChecksumError
	if err != nil && !errors.As(err, &ce) {
		err = fmt.Errorf("pms5003: %w", err)
	}
	return f, err
}

func (d *Dev) readFrame(ctx context.Context) ([]byte, error) {
	skipped := 0
	for {
		n, err := d.p.Sync(ctx, header, d.opts.MaxGarbage-skipped)
		skipped += n
		if err != nil {
			return nil, err
		}
		f := make([]byte, 4, 4+dataLen)
		copy(f, header)
		if err := d.p.ReadFull(ctx, f[2:4]); err != nil {
			return nil, truncated(err, 2, 4+dataLen)
		}
		n = int(binary.BigEndian.Uint16(f[2:4]))
		// A length no frame has: the header bytes were data (or noise),
		// and the search goes on after them.
		if n < 2 || n > dataLen || n%2 != 0 {
			skipped += 4
			if skipped > d.opts.MaxGarbage {
				return nil, &serial.GarbageError{Skipped: skipped}
			}
			continue
		}
		f = f[:4+n]
		if err := d.p.ReadFull(ctx, f[4:]); err != nil {
			return nil, truncated(err, 4, 4+n)
		}
		if c, r := sum(f[:len(f)-2]), binary.BigEndian.Uint16(f[len(f)-2:]); c != r {
			return nil, &ChecksumError{Calculated: c, Received: r}
		}
		return f, nil
	}
}

// truncated counts the bytes of a frame read before a cut-short read.
func truncated(err error, before, want int) error {
	var te *serial.TruncatedError
	if errors.As(err, &te) {
		return &serial.TruncatedError{Got: before + te.Got, Want: want, Err: te.Err}
	}
	return err
}

// Parse decodes a 32-byte data frame whose check word was verified.
func Parse(f []byte) (Reading, error) {
	if len(f) != 4+dataLen {
		return Reading{}, fmt.Errorf("pms5003: frame of %d bytes, want %d", len(f), 4+dataLen)
	}
	var w [13]uint16
	for i := range w {
		w[i] = binary.BigEndian.Uint16(f[4+2*i:])
	}
	if [12]uint16(w[:12]) == [12]uint16{} {
		return Reading{}, ErrNotReady
	}
	return Reading{CF1: [3]uint16(w[0:3]), Atm: [3]uint16(w[3:6]), Counts: [6]uint16(w[6:12]), Reserved: w[12]}, nil
}
