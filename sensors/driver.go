package sensors

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Values maps quantity names to numbers in the wire contract's units:
// temperature °C, humidity %RH, pressure hPa, moisture %, co2 ppm,
// illuminance lx, voltage V, current A, power W, pm1, pm2_5 and pm10
// µg/m³.
type Values map[string]float64

// Driver is one opened sensor.
type Driver interface {
	// Read takes one sample. It must return by ctx's deadline where the
	// hardware allows; the scheduler abandons reads that do not.
	Read(ctx context.Context) (Values, error)
	// Close releases the device. It is called once, after the last Read
	// has returned.
	Close() error
}

// Opener opens the device a Kind prepared: this is where hardware is
// touched (bus opened, chip id and calibration read).
type Opener func(ctx context.Context) (Driver, error)

// Kind is a driver name in the config (bme280, ds18b20, sim, ...).
type Kind struct {
	Name string
	// Timeout is the per-read deadline when the config sets none.
	Timeout time.Duration
	// Prepare checks the sensor's options for form only, never for the
	// presence of hardware (config check runs on a laptop), and returns
	// what opens it. Errors name the option, e.g. "address: 0x80 out of
	// range 0x03..0x77". It ends with "return opener, opts.Done()" so
	// unknown options are rejected.
	Prepare func(name string, opts *Options) (Opener, error)
}

// Registry maps driver names to kinds.
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns a registry of the given kinds.
func NewRegistry(kinds ...Kind) (*Registry, error) {
	r := &Registry{kinds: make(map[string]Kind, len(kinds))}
	for _, k := range kinds {
		if k.Name == "" || k.Prepare == nil {
			return nil, fmt.Errorf("sensors: kind %q is incomplete", k.Name)
		}
		if _, dup := r.kinds[k.Name]; dup {
			return nil, fmt.Errorf("sensors: kind %q registered twice", k.Name)
		}
		r.kinds[k.Name] = k
	}
	return r, nil
}

// Lookup returns the kind for a driver name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Names lists the registered driver names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
