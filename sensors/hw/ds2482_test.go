package hw

import (
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
	"periph.io/x/conn/v3/i2c"
)

// ds2482 is a chipmodel DS2482 alone on a bus at addr, with instant
// conversions: the playback-style tests' bridge.
type ds2482 struct {
	*chipmodel.DS2482
	*chipmodel.Bus
}

var _ i2c.BusCloser = ds2482{}

func newDS2482(addr uint16) ds2482 {
	d := ds2482{chipmodel.NewDS2482(nil), chipmodel.NewBus("/dev/i2c-1")}
	d.Bus.Add(addr, d.DS2482)
	return d
}

func (d ds2482) Tx(addr uint16, w, r []byte) error { return d.Bus.Tx(addr, w, r) }

func (d ds2482) add(id string, next int16) *chipmodel.DS18B20 {
	return d.DS2482.Add(romAddress(id), next)
}
