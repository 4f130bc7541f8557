package hw

import (
	"fmt"

	"github.com/kitd-dev/kitd/sensors"
)

// i2cClaim is the chip a sensor drives, for config-time conflict checks.
//
// Two sensors conflict when transfers meant for one could reach the
// other's chip, or when both drive one chip that kitd does not share:
//
//   - the same bus, mux channel and address, unless both are the same
//     driver on different units of one chip that kitd serialises (the
//     channels of an ADS1x15, the thermometers behind a DS2482);
//   - an address on the main bus that a chip behind a PCA9548 also uses:
//     while the mux has that channel selected, both answer;
//   - the same address behind two PCA9548s on one bus: periph selects a
//     channel on one mux and never deselects the other's, so kitd refuses
//     the config rather than switching every other mux off before each
//     transfer;
//   - a chip at the address of a PCA9548 on the same bus.
type i2cClaim struct {
	t      target
	driver string
	// share is the unit of the chip this sensor uses when the driver
	// serialises the chip's users ("channel 2"); "" when it does not.
	share string
}

var _ sensors.Claim = i2cClaim{}

func (a i2cClaim) Conflict(other sensors.Claim) string {
	b, ok := other.(i2cClaim)
	if !ok || a.t.bus != b.t.bus {
		return ""
	}
	if why := muxAddressClash(a, b); why != "" {
		return why
	}
	if why := muxAddressClash(b, a); why != "" {
		return why
	}
	if a.t.addr != b.t.addr {
		return ""
	}
	switch {
	case a.t.mux != b.t.mux:
		m := a.t
		if !m.mux {
			m = b.t
		}
		return fmt.Sprintf("0x%02x is used on the main bus %s and behind pca9548 0x%02x channel %d, and both answer while that channel is selected", a.t.addr, a.t.bus, m.muxAddr, m.channel)
	case a.t.mux && a.t.muxAddr != b.t.muxAddr:
		return fmt.Sprintf("0x%02x is used behind pca9548 0x%02x and behind pca9548 0x%02x on %s: a channel selected on one mux stays selected while the other is used, so both chips answer", a.t.addr, a.t.muxAddr, b.t.muxAddr, a.t.bus)
	case a.t.mux && a.t.channel != b.t.channel:
		return ""
	case a.share != "" && a.driver == b.driver && a.share != b.share:
		return ""
	}
	return fmt.Sprintf("both drive the chip at %s", a.t)
}

// muxAddressClash reports a chip of b at the address of a's mux.
func muxAddressClash(a, b i2cClaim) string {
	if a.t.mux && b.t.addr == a.t.muxAddr {
		return fmt.Sprintf("0x%02x is the address of the pca9548 at %s 0x%02x", b.t.addr, a.t.bus, a.t.muxAddr)
	}
	return ""
}
