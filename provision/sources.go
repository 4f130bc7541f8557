package provision

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
)

// Sources are where the placeholders' values come from. The zero value
// reads the running board (DefaultSources); tests replace the functions.
type Sources struct {
	// DeviceTreeSerial is the board's serial number from the device tree
	// (/proc/device-tree/serial-number on a Pi or a BeagleBone).
	DeviceTreeSerial func() (string, error)
	// CPUInfoSerial is the "Serial" line of /proc/cpuinfo (older Pi
	// kernels).
	CPUInfoSerial func() (string, error)
	// MAC is the first non-loopback interface's hardware address, as
	// aa:bb:cc:dd:ee:ff.
	MAC func() (string, error)
	// Hostname is os.Hostname.
	Hostname func() (string, error)
}

// DefaultSources read the running board.
func DefaultSources() Sources {
	return Sources{
		DeviceTreeSerial: func() (string, error) { return readTrimmed("/proc/device-tree/serial-number") },
		CPUInfoSerial:    func() (string, error) { return cpuinfoSerial("/proc/cpuinfo") },
		MAC:              firstMAC,
		Hostname:         os.Hostname,
	}
}

func (s Sources) withDefaults() Sources {
	d := DefaultSources()
	if s.DeviceTreeSerial == nil {
		s.DeviceTreeSerial = d.DeviceTreeSerial
	}
	if s.CPUInfoSerial == nil {
		s.CPUInfoSerial = d.CPUInfoSerial
	}
	if s.MAC == nil {
		s.MAC = d.MAC
	}
	if s.Hostname == nil {
		s.Hostname = d.Hostname
	}
	return s
}

// placeholders maps each placeholder to how it is filled in.
var placeholders = map[string]func(Sources) (string, error){
	"{serial}":   Sources.Serial,
	"{hostname}": func(s Sources) (string, error) { return s.Hostname() },
	"{mac}":      func(s Sources) (string, error) { return s.MAC() },
}

// Serial is the board's serial: the device tree's serial-number, else
// /proc/cpuinfo's Serial, else the first MAC without its colons. Leading
// zeros are kept (a Pi's cpuinfo serial is 16 hex digits with them).
func (s Sources) Serial() (string, error) {
	s = s.withDefaults()
	for _, f := range []func() (string, error){s.DeviceTreeSerial, s.CPUInfoSerial} {
		if v, err := f(); err == nil && v != "" {
			return v, nil
		}
	}
	if mac, err := s.MAC(); err == nil && mac != "" {
		return strings.ReplaceAll(mac, ":", ""), nil
	}
	return "", ErrNoSerial
}

// Expand fills the placeholders of every parameter value.
func (s Sources) Expand(params map[string]string) (map[string]string, error) {
	s = s.withDefaults()
	out := make(map[string]string, len(params))
	for k, v := range params {
		var ferr error
		out[k] = placeholder.ReplaceAllStringFunc(v, func(m string) string {
			f, ok := placeholders[m]
			if !ok {
				ferr = fmt.Errorf("parameters.%s: unknown placeholder %s", k, m)
				return m
			}
			val, err := f(s)
			if err != nil {
				ferr = fmt.Errorf("parameters.%s: %s: %w", k, m, err)
			}
			return val
		})
		if ferr != nil {
			return nil, ferr
		}
	}
	return out, nil
}

// readTrimmed reads a small text file; the device tree's strings end in
// a NUL.
func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(bytes.TrimRight(b, "\x00"))), nil
}

func cpuinfoSerial(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "Serial" {
			if v = strings.TrimSpace(v); v != "" && strings.Trim(v, "0") != "" {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("%s: no Serial line", path)
}

func firstMAC() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || len(i.HardwareAddr) == 0 {
			continue
		}
		return i.HardwareAddr.String(), nil
	}
	return "", fmt.Errorf("no network interface with a hardware address")
}
