package hw

import (
	"context"
	"errors"
	"fmt"
	"github.com/kitd-dev/kitd/internal/wait"
	"log/slog"
	"sync"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/i2c"
)

// Host owns periph's host initialisation and the handles sensors share:
// I2C buses, PCA9548 multiplexers and DS2482 bridges. Its methods may be
// called concurrently. Set the func fields before the first Open or Scan.
type Host struct {
	// OpenBus opens an I2C bus by name (/dev/i2c-N). The default
	// initialises periph's host drivers once and opens the bus through
	// periph's i2creg; tests give a playback or fault-injecting bus.
	OpenBus func(name string) (i2c.BusCloser, error)
	// ListBuses returns the I2C bus names present, for Scan. The default
	// lists /dev/i2c-*.
	ListBuses func() ([]string, error)
	// Sleep waits d or until ctx ends. It times every wait of kitd's own
	// drivers (ADS1x15 conversions, INA219 calibration, BH1750, SCD4x,
	// SHT3x, SHT4x, DS18B20 conversions on a DS2482, the BMP180's SCO
	// polling; periph's bmxx80 and aht20 also sleep on their own); tests
	// make it return at once, or move a chip model's clock.
	Sleep func(ctx context.Context, d time.Duration) error

	log *slog.Logger
	// now times what this package measures itself (a DS2482's shared
	// conversion window); tests with a chip model's clock replace it.
	now func() time.Time

	initOnce sync.Once
	initErr  error

	mu      sync.Mutex
	closed  bool
	buses   map[string]i2c.BusCloser
	muxes   map[muxKey]*mux
	bridges map[bridgeKey]*bridge
	chips   map[target]chipLock
}

// NewHost returns a Host that has touched no hardware yet.
func NewHost(log *slog.Logger) *Host {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Host{
		log:     log,
		buses:   map[string]i2c.BusCloser{},
		muxes:   map[muxKey]*mux{},
		bridges: map[bridgeKey]*bridge{},
	}
	h.OpenBus = h.openDevBus
	h.ListBuses = listDevBuses
	h.Sleep = wait.Sleep
	h.now = time.Now
	return h
}

// Kinds returns every hardware driver, for the sensors registry.
func (h *Host) Kinds() []sensors.Kind {
	return []sensors.Kind{
		h.bmxKind("bme280"),
		h.bmxKind("bmp280"),
		h.bmxKind("bmp180"),
		h.ds18b20Kind(),
		h.adsKind("ads1115"),
		h.adsKind("ads1015"),
		h.sht3xKind(),
		h.sht4xKind(),
		h.aht20Kind(),
		h.scd4xKind(),
		h.bh1750Kind(),
		h.ina219Kind(),
	}
}

// bus returns the shared handle of an I2C bus, opening it on first use. A
// failed open is not remembered: the next sensor open tries again, so a
// bus enabled while the agent runs is picked up.
func (h *Host) bus(name string) (i2c.Bus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if b, ok := h.buses[name]; ok {
		return b, nil
	}
	b, err := h.OpenBus(name)
	if err != nil {
		return nil, err
	}
	h.buses[name] = b
	return b, nil
}

// Close releases the multiplexers, bridges and buses. Sensors must be
// closed first; it is safe to call more than once.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	bridges, muxes, buses := h.bridges, h.muxes, h.buses
	h.bridges, h.muxes, h.buses = nil, nil, nil
	h.mu.Unlock()

	var errs []error
	for _, b := range bridges {
		b.close()
	}
	for _, m := range muxes {
		if err := m.close(); err != nil {
			errs = append(errs, err)
		}
	}
	for name, b := range buses {
		if err := b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// sleep calls Sleep as it is at the time of the wait, for drivers that
// keep a sleep func.
func (h *Host) sleep(ctx context.Context, d time.Duration) error { return h.Sleep(ctx, d) }
