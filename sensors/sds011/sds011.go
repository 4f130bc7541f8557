package sds011

import (
	"context"
	"errors"
	"fmt"

	"github.com/kitd-dev/kitd/sensors/serial"
)

// MaxValue is the top of the sensor's range in µg/m³ (datasheet).
const MaxValue = 999.9

// Opts are the sensor's settings.
type Opts struct {
	// ID addresses one sensor by its id; 0 means any (FF FF), for the one
	// sensor on a port.
	ID uint16
}

// DefaultOpts are used when New is given nil.
var DefaultOpts = Opts{}

// Command and answer codes.
const (
	head     = 0xAA
	tail     = 0xAB
	cmdHost  = 0xB4
	ansData  = 0xC0
	ansReply = 0xC5

	opReportingMode = 2
	opQuery         = 4
)

// maxFrames bounds the frames a request passes over before its answer
// (active-mode data, late answers to earlier commands).
const maxFrames = 8

// maxGarbage bounds the bytes skipped looking for a frame.
const maxGarbage = 64

// Command builds a 19-byte command with data bytes d (D1.., the rest
// zero) addressed to id (0 means FF FF).
func Command(id uint16, d ...byte) []byte {
	b := make([]byte, 19)
	b[0], b[1], b[18] = head, cmdHost, tail
	copy(b[2:15], d)
	if id == 0 {
		id = 0xFFFF
	}
	b[15], b[16] = byte(id>>8), byte(id)
	b[17] = sum(b[2:17])
	return b
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// Dev is an SDS011 on an open port, in query mode.
type Dev struct {
	p  *serial.Port
	id uint16 // the sensor's id, from its answer to the mode command
	to uint16 // the id commands are addressed to
}

// New sets the sensor on p to query mode and waits for its answer by
// ctx's deadline.
func New(ctx context.Context, p *serial.Port, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	d := &Dev{p: p, to: opts.ID}
	if err := p.Flush(); err != nil {
		return nil, err
	}
	// D1 2: data reporting mode; D2 1: set; D3 1: query mode.
	if err := p.Write(ctx, Command(d.to, opReportingMode, 1, 1)); err != nil {
		return nil, fmt.Errorf("sds011: query mode: %w", err)
	}
	f, err := d.answer(ctx, ansReply, opReportingMode)
	if err != nil {
		return nil, fmt.Errorf("%w (answer to set query mode)", err)
	}
	if f[3] != 1 || f[4] != 1 {
		return nil, fmt.Errorf("sds011: query mode: answer % X does not confirm it: %w", f, ErrFrame)
	}
	d.id = uint16(f[6])<<8 | uint16(f[7])
	return d, nil
}

// ID is the sensor's id as it reported it.
func (d *Dev) ID() uint16 { return d.id }

// Read queries the sensor and returns PM2.5 and PM10 in µg/m³.
func (d *Dev) Read(ctx context.Context) (pm25, pm10 float64, err error) {
	if err := d.p.Flush(); err != nil {
		return 0, 0, err
	}
	if err := d.p.Write(ctx, Command(d.to, opQuery)); err != nil {
		return 0, 0, fmt.Errorf("sds011: query: %w", err)
	}
	f, err := d.answer(ctx, ansData, 0)
	if err != nil {
		return 0, 0, err
	}
	return d.parse(f)
}

func (d *Dev) parse(f [10]byte) (pm25, pm10 float64, err error) {
	if [6]byte(f[2:8]) == [6]byte{} {
		return 0, 0, ErrAllZero
	}
	if id := uint16(f[6])<<8 | uint16(f[7]); id != d.id {
		return 0, 0, fmt.Errorf("%w: data from sensor id %04X, opened %04X", ErrFrame, id, d.id)
	}
	pm25 = float64(uint16(f[3])<<8|uint16(f[2])) / 10
	pm10 = float64(uint16(f[5])<<8|uint16(f[4])) / 10
	for _, v := range []struct {
		q string
		x float64
	}{{"pm2_5", pm25}, {"pm10", pm10}} {
		if v.x > MaxValue {
			return 0, 0, &RangeError{Quantity: v.q, Value: v.x}
		}
	}
	return pm25, pm10, nil
}

// answer reads frames until one with code cmd (and, for C5 answers, the
// command op in D1), checking every frame's checksum and tail.
func (d *Dev) answer(ctx context.Context, cmd, op byte) ([10]byte, error) {
	for range maxFrames {
		f, err := d.frame(ctx)
		if err != nil {
			return f, err
		}
		if f[1] == cmd && (cmd != ansReply || f[2] == op) {
			return f, nil
		}
	}
	return [10]byte{}, fmt.Errorf("sds011: %d frames without the answer: not an SDS011?", maxFrames)
}

// frame reads the next frame: AA, a known answer code, 6 data bytes,
// checksum, AB. An AA followed by anything else is garbage.
func (d *Dev) frame(ctx context.Context) ([10]byte, error) {
	f, err := d.readFrame(ctx)
	var ce *ChecksumError
	if err != nil && !errors.As(err, &ce) && !errors.Is(err, ErrFrame) {
		err = fmt.Errorf("sds011: %w", err)
	}
	return f, err
}

func (d *Dev) readFrame(ctx context.Context) ([10]byte, error) {
	var f [10]byte
	skipped := 0
	for {
		n, err := d.p.Sync(ctx, []byte{head}, maxGarbage-skipped)
		skipped += n
		if err != nil {
			return f, err
		}
		c, err := d.p.Next(ctx)
		for err == nil && c == head {
			// AA AA C0: the first AA was garbage.
			skipped++
			c, err = d.p.Next(ctx)
		}
		if err != nil {
			return f, truncated(err, 1)
		}
		if c != ansData && c != ansReply {
			skipped += 2
			if skipped > maxGarbage {
				return f, &serial.GarbageError{Skipped: skipped}
			}
			continue
		}
		f[0], f[1] = head, c
		if err := d.p.ReadFull(ctx, f[2:]); err != nil {
			return f, truncated(err, 2)
		}
		if s := sum(f[2:8]); s != f[8] {
			return f, &ChecksumError{Calculated: s, Received: f[8]}
		}
		if f[9] != tail {
			return f, fmt.Errorf("%w: ends 0x%02X, want 0xAB", ErrFrame, f[9])
		}
		return f, nil
	}
}

func truncated(err error, before int) error {
	var te *serial.TruncatedError
	if errors.As(err, &te) {
		return &serial.TruncatedError{Got: before + te.Got, Want: 10, Err: te.Err}
	}
	return err
}
