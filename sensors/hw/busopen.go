package hw

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/sysfs"
)

// i2cDriverName is periph's name for its Linux /dev/i2c-N driver.
const i2cDriverName = "sysfs-i2c"

// initPeriph runs periph's host.Init once and reads its State: a failure
// of the I2C driver is an error; failures of drivers I2C does not need
// (GPIO on a board periph does not know, say) are logged.
func (h *Host) initPeriph() error {
	h.initOnce.Do(func() {
		state, err := host.Init()
		h.initErr = h.initState(state, err)
	})
	return h.initErr
}

func (h *Host) initState(state *driverreg.State, err error) error {
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHostInit, err)
	}
	if state == nil {
		return nil
	}
	var errs []error
	for _, f := range state.Failed {
		if f.D != nil && f.D.String() == i2cDriverName {
			errs = append(errs, fmt.Errorf("%w: driver %s: %v", ErrHostInit, i2cDriverName, f.Err))
			continue
		}
		h.log.Warn("periph driver failed; I2C does not need it", "driver", f.String())
	}
	return errors.Join(errs...)
}

// openDevBus is the default Host.OpenBus.
func (h *Host) openDevBus(name string) (i2c.BusCloser, error) {
	n, err := busNumber(name)
	if err != nil {
		return nil, err
	}
	if err := h.initPeriph(); err != nil {
		return nil, err
	}
	// periph's own messages talk of /boot/config.txt and group plugdev,
	// which are wrong for current Raspberry Pi OS: check the device file
	// first so the error says what to do on this board.
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, busOpenError(name, err)
	}
	f.Close()
	b, err := i2creg.Open(name)
	if err != nil {
		// periph registers the buses present when it starts; one enabled
		// since (modprobe i2c-dev) is opened directly.
		sb, err2 := sysfs.NewI2C(n)
		if err2 != nil {
			return nil, fmt.Errorf("%s: %v", name, err2)
		}
		return sb, nil
	}
	return b, nil
}

func busOpenError(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", name, ErrNoBus)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: %w", name, ErrBusPermission)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func busNumber(name string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "/dev/i2c-"))
	if err != nil || !strings.HasPrefix(name, "/dev/i2c-") || n < 0 {
		return 0, fmt.Errorf("%q is not an I2C bus name of the form /dev/i2c-N", name)
	}
	return n, nil
}

// listDevBuses is the default Host.ListBuses: /dev/i2c-N in numeric order.
func listDevBuses() ([]string, error) {
	return listBusesIn("/dev")
}

func listBusesIn(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "i2c-*"))
	if err != nil {
		return nil, err
	}
	type bus struct {
		name string
		n    int
	}
	var buses []bus
	for _, p := range paths {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(p), "i2c-"))
		if err != nil {
			continue
		}
		buses = append(buses, bus{"/dev/i2c-" + strconv.Itoa(n), n})
	}
	sort.Slice(buses, func(i, j int) bool { return buses[i].n < buses[j].n })
	names := make([]string, len(buses))
	for i, b := range buses {
		names[i] = b.name
	}
	return names, nil
}
