package iio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// DefaultDir is where the kernel lists IIO devices.
const DefaultDir = "/sys/bus/iio/devices"

// Quantity is what a channel type measures, in the wire contract's
// units: name, and value = sysfs value * Mul / Div (two fields, so that
// 23400 m°C is 23.4 °C exactly, not 23.400000000000002).
type Quantity struct {
	Name     string
	Mul, Div float64
}

// Types maps the IIO channel types kitd reads to their quantities.
var Types = map[string]Quantity{
	"voltage":          {"voltage", 1, 1000},
	"temp":             {"temperature", 1, 1000},
	"humidityrelative": {"humidity", 1, 1000},
	"pressure":         {"pressure", 10, 1},
	"illuminance":      {"illuminance", 1, 1},
}

// TypeNames lists Types' keys, sorted, for messages.
func TypeNames() []string {
	names := make([]string, 0, len(Types))
	for t := range Types {
		names = append(names, t)
	}
	sort.Strings(names)
	return names
}

// channelFile is in_<channel>_<info>; a channel is a type, an optional
// index and optional modifiers (in_temp_ambient_input).
var (
	channelFile = regexp.MustCompile(`^in_([a-z]+)([0-9]*)((?:_[a-z][a-z0-9]*)*?)_(raw|input)$`)
	channelName = regexp.MustCompile(`^([a-z]+)([0-9]*)((?:_[a-z][a-z0-9]*)*)$`)
)

// ValidChannel reports whether s has the form of an IIO channel name.
func ValidChannel(s string) bool { return channelName.MatchString(s) }

// ChannelType is the type part of a channel name: voltage of voltage0.
func ChannelType(ch string) string {
	m := channelName.FindStringSubmatch(ch)
	if m == nil {
		return ""
	}
	return m[1]
}

// Device is one IIO device.
type Device struct {
	Dir  string // e.g. iio:device0
	Name string // the name file, e.g. TI-am335x-adc.0.auto
	// Channels are the readable channels (those with _raw or _input),
	// sorted, e.g. voltage0 or humidityrelative.
	Channels []string
}

// List returns the IIO devices in dir, sorted by directory. A missing
// dir is not an error: the kernel has no IIO device.
func List(dir string) ([]Device, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "iio:device") {
			continue
		}
		d := Device{Dir: e.Name()}
		p := filepath.Join(dir, e.Name())
		name, err := os.ReadFile(filepath.Join(p, "name"))
		if err != nil {
			continue // a device going away while listed
		}
		d.Name = strings.TrimSpace(string(name))
		d.Channels, _ = channels(p)
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return lessDir(out[i].Dir, out[j].Dir) })
	return out, nil
}

// lessDir sorts iio:device2 before iio:device10.
func lessDir(a, b string) bool {
	na, ea := strconv.Atoi(strings.TrimPrefix(a, "iio:device"))
	nb, eb := strconv.Atoi(strings.TrimPrefix(b, "iio:device"))
	if ea == nil && eb == nil {
		return na < nb
	}
	return a < b
}

func channels(devDir string) ([]string, error) {
	ents, err := os.ReadDir(devDir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range ents {
		m := channelFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		ch := m[1] + m[2] + m[3]
		if !seen[ch] {
			seen[ch] = true
			out = append(out, ch)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Find returns the directory of the device whose name file is name, or
// whose directory is name (iio:device1: the way to pick one of two
// devices with the same name).
func Find(dir, name string) (Device, error) {
	devs, err := List(dir)
	if err != nil {
		return Device{}, fmt.Errorf("iio: %w", err)
	}
	var hits []Device
	for _, d := range devs {
		if d.Name == name || d.Dir == name {
			hits = append(hits, d)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		names := make([]string, len(devs))
		for i, d := range devs {
			names[i] = fmt.Sprintf("%s (%s)", d.Name, d.Dir)
		}
		have := "none"
		if len(names) > 0 {
			have = strings.Join(names, ", ")
		}
		return Device{}, fmt.Errorf("%w %q in %s (present: %s; on a BeagleBone the ADC needs its overlay, BB-ADC; a dht11 needs dtoverlay=dht11)", ErrNotFound, name, dir, have)
	}
	dirs := make([]string, len(hits))
	for i, d := range hits {
		dirs[i] = d.Dir
	}
	return Device{}, fmt.Errorf("iio: %d devices are named %q (%s): set device to one directory name", len(hits), name, strings.Join(dirs, ", "))
}

// NoDevicesHint is printed when List finds nothing.
const NoDevicesHint = "no IIO devices (on a BeagleBone Black the ADC needs the BB-ADC overlay; a DHT11/DHT22 needs dtoverlay=dht11,gpiopin=N on a Pi)"

// WriteList prints devices for a person, as kitd sensors scan does.
func WriteList(w io.Writer, dir string, devs []Device, err error) error {
	bw := bufio.NewWriter(w)
	switch {
	case err != nil:
		fmt.Fprintf(bw, "IIO %s: cannot list: %v\n", dir, err)
	case len(devs) == 0:
		fmt.Fprintf(bw, "IIO %s: %s\n", dir, NoDevicesHint)
	default:
		fmt.Fprintf(bw, "IIO %s: %d %s\n", dir, len(devs), plural(len(devs), "device", "devices"))
		for _, d := range devs {
			chs := strings.Join(d.Channels, " ")
			if chs == "" {
				chs = "(no readable channels)"
			}
			fmt.Fprintf(bw, "  %s  %s  %s\n", d.Dir, d.Name, chs)
		}
	}
	return bw.Flush()
}
