package serial

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Info is one serial port found on the machine.
type Info struct {
	Path string // e.g. /dev/ttyAMA0
	// Target is where a symlink such as /dev/serial0 points, else "".
	Target string
}

// patterns are the serial device names kitd's sensors are wired to.
var patterns = []string{"ttyS*", "ttyAMA*", "ttyUSB*", "ttyACM*", "serial0", "serial1"}

// List returns the serial ports in devDir (normally /dev), sorted.
// 8250-style ttyS ports that have no UART behind them (a PC lists 32 of
// them) are left out: sysDir/class/tty/NAME/type is 0 (PORT_UNKNOWN) for
// those. A devDir that does not exist gives an empty list.
func List(devDir, sysDir string) ([]Info, error) {
	var out []Info
	for _, pat := range patterns {
		paths, err := filepath.Glob(filepath.Join(devDir, pat))
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			name := filepath.Base(p)
			if strings.HasPrefix(name, "ttyS") && !uartPresent(sysDir, name) {
				continue
			}
			i := Info{Path: p}
			if t, err := os.Readlink(p); err == nil {
				i.Target = t
			}
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Path < out[b].Path })
	return out, nil
}

func uartPresent(sysDir, name string) bool {
	b, err := os.ReadFile(filepath.Join(sysDir, "class", "tty", name, "type"))
	if errors.Is(err, fs.ErrNotExist) {
		// No type file: not an 8250 port (an OMAP or PL011 UART named
		// ttyS), so it is real.
		return true
	}
	return err == nil && strings.TrimSpace(string(b)) != "0"
}

// NoPortsHint is printed when List finds nothing.
const NoPortsHint = "no serial ports (on a Pi: enable_uart=1 in /boot/firmware/config.txt and no serial console, then reboot; on a BeagleBone Black, a UART overlay such as BB-UART1; or plug in a USB serial adapter)"

// WriteList prints ports for a person, as kitd sensors scan does.
func WriteList(w io.Writer, devDir string, ports []Info, err error) error {
	bw := bufio.NewWriter(w)
	switch {
	case err != nil:
		fmt.Fprintf(bw, "Serial %s: cannot list: %v\n", devDir, err)
	case len(ports) == 0:
		fmt.Fprintf(bw, "Serial %s: %s\n", devDir, NoPortsHint)
	default:
		fmt.Fprintf(bw, "Serial %s: %d %s\n", devDir, len(ports), map[bool]string{true: "port", false: "ports"}[len(ports) == 1])
		for _, p := range ports {
			if p.Target != "" {
				fmt.Fprintf(bw, "  %s -> %s\n", p.Path, p.Target)
			} else {
				fmt.Fprintf(bw, "  %s\n", p.Path)
			}
		}
	}
	return bw.Flush()
}
