package serial

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kitd-dev/kitd/sensors"
)

// devPath is a device path's form: under /dev, plain name characters,
// which covers /dev/ttyS0, /dev/serial0 and the udev links under
// /dev/serial/by-id/ (usb-1a86_USB2.0-Serial-if00-port0) and by-path/.
var devPath = regexp.MustCompile(`^/dev/[A-Za-z0-9._+:@-]+(/[A-Za-z0-9._+:@-]+)*$`)

// PortOption returns the required serial port option key, checked for
// form only: an absolute path under /dev. There is no default: a Pi's
// GPIO UART is /dev/serial0, a BeagleBone's UART1 /dev/ttyS1, a USB
// adapter /dev/ttyUSB0, and guessing wrong talks to some other device.
func PortOption(o *sensors.Options, key string) string {
	v := o.String(key, "")
	switch {
	case v == "":
		o.Fail(key, "required, the sensor's serial port (e.g. /dev/serial0 or /dev/ttyAMA0 on a Raspberry Pi, /dev/ttyS1 on a BeagleBone Black, /dev/ttyUSB0 for a USB adapter)")
	case !devPath.MatchString(v) || filepath.Clean(v) != v || strings.Contains(v, "/../") || strings.HasSuffix(v, "/.."):
		o.Fail(key, "%q is not a serial device path such as /dev/ttyS0 (an absolute path under /dev)", v)
	default:
		o.Claim(portClaim(v))
	}
	return v
}

// portClaim refuses two sensors on one serial port in config check: at run
// time the second open fails as busy (or, as root, mixes its frames with the
// first's).
type portClaim string

func (p portClaim) Conflict(other sensors.Claim) string {
	if q, ok := other.(portClaim); ok && p == q {
		return "both use serial port " + string(p)
	}
	return ""
}
