package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/sensors"
)

// DefaultTimeout is the sim's per-read deadline when the config sets none.
const DefaultTimeout = time.Second

// Kind is the "sim" driver, reading the system clock.
func Kind() sensors.Kind { return KindAt(time.Now) }

// KindAt is the "sim" driver with its waveforms evaluated at now(), for
// tests and demos that drive time themselves.
func KindAt(now func() time.Time) sensors.Kind {
	return sensors.Kind{
		Name:    "sim",
		Timeout: DefaultTimeout,
		Prepare: func(name string, o *sensors.Options) (sensors.Opener, error) {
			return prepare(name, o, now)
		},
	}
}

// device is one configured sim sensor; it outlives re-opens, like a chip.
type device struct {
	name       string
	quantities []string
	failEvery  int64
	hang       time.Duration
	openError  string
	now        func() time.Time

	reads   atomic.Int64 // across re-opens, for fail_every
	opened  atomic.Bool
	reading atomic.Bool
}

func prepare(name string, o *sensors.Options, now func() time.Time) (sensors.Opener, error) {
	d := &device{
		name:       name,
		quantities: o.Strings("quantities", []string{"temperature", "humidity"}),
		failEvery:  int64(o.Int("fail_every", 0)),
		hang:       o.Duration("hang", 0),
		openError:  o.String("open_error", ""),
		now:        now,
	}
	if len(d.quantities) == 0 {
		o.Fail("quantities", "must list at least one quantity")
	}
	for i, q := range d.quantities {
		if _, ok := waveOf(q); !ok {
			o.Fail("quantities", "unknown quantity %q (known: %v)", q, Quantities())
		} else if slices.Contains(d.quantities[:i], q) {
			o.Fail("quantities", "%q listed twice", q)
		}
	}
	if d.failEvery < 0 {
		o.Fail("fail_every", "must not be negative")
	}
	if d.hang < 0 {
		o.Fail("hang", "must not be negative")
	}
	return d.open, o.Done()
}

func (d *device) open(ctx context.Context) (sensors.Driver, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.openError != "" {
		return nil, fmt.Errorf("sim: %s", d.openError)
	}
	if !d.opened.CompareAndSwap(false, true) {
		return nil, errors.New("sim: device already open: two users of one device")
	}
	return &driver{dev: d}, nil
}

// driver is one open of a device.
type driver struct {
	dev    *device
	closed atomic.Bool
}

var _ sensors.Driver = (*driver)(nil)

func (r *driver) Read(ctx context.Context) (sensors.Values, error) {
	d := r.dev
	if r.closed.Load() {
		return nil, errors.New("sim: read after close")
	}
	if !d.reading.CompareAndSwap(false, true) {
		return nil, errors.New("sim: read while another read is in progress: two users of one device")
	}
	defer d.reading.Store(false)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := d.reads.Add(1)
	if d.hang > 0 {
		time.Sleep(d.hang) // ignores ctx on purpose: a hung bus does too
	}
	if d.failEvery > 0 && n%d.failEvery == 0 {
		return nil, fmt.Errorf("sim: simulated failure on read %d", n)
	}
	t := d.now()
	v := make(sensors.Values, len(d.quantities))
	for _, q := range d.quantities {
		v[q] = Value(d.name, q, t)
	}
	return v, nil
}

func (r *driver) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return errors.New("sim: closed twice")
	}
	r.dev.opened.Store(false)
	return nil
}
