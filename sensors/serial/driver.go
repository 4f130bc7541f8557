package serial

import (
	"context"

	"github.com/kitd-dev/kitd/sensors"
)

// ReadFunc reads a sensor on an open port once.
type ReadFunc func(ctx context.Context) (sensors.Values, error)

// OpenDriver opens path and hands the port to newSensor, which sets the
// sensor up (a mode command, a first answer) and returns how to read it.
// The returned driver owns the port: its Close closes it. When newSensor
// fails, the port is closed before the error is returned, so a sensor
// that keeps failing to open does not hold its port (TIOCEXCL would make
// every later open, kitd sensors read's included, fail as busy).
func OpenDriver(ctx context.Context, path string, opts *Opts, newSensor func(ctx context.Context, p *Port) (ReadFunc, error)) (sensors.Driver, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	read, err := newSensor(ctx, p)
	if err != nil {
		p.Close()
		return nil, err
	}
	return &driver{p: p, read: read}, nil
}

// driver is a serial sensor and the port it owns.
type driver struct {
	p    *Port
	read ReadFunc
}

func (d *driver) Read(ctx context.Context) (sensors.Values, error) { return d.read(ctx) }

func (d *driver) Close() error { return d.p.Close() }
