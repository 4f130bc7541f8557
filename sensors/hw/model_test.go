package hw

import (
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
	"periph.io/x/conn/v3/i2c"
)

// modelHost returns a Host whose only bus, /dev/i2c-1, is a chip-model bus
// and whose own waits move the models' clock: a driver that waits on
// anything else reads a model before its conversion is done.
func modelHost(t *testing.T) (*Host, *chipmodel.Bus, *chipmodel.Clock) {
	t.Helper()
	clock := &chipmodel.Clock{}
	bus := chipmodel.NewBus("/dev/i2c-1")
	bus.Clock = clock
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": bus})
	h.Sleep = clock.Sleep
	h.now = func() time.Time { return time.Unix(0, 0).Add(clock.Now()) }
	t.Cleanup(func() { h.Close() })
	return h, bus, clock
}
