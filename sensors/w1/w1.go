package w1

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kitd-dev/kitd/internal/ident"
)

// DefaultDir is where the kernel lists 1-Wire devices.
const DefaultDir = "/sys/bus/w1/devices"

// validID is the kernel's name for a 1-Wire device: the family code and
// the serial number in lower-case hex, e.g. 28-0316a2795aff.
func validID(id string) bool {
	return len(id) == 15 && id[2] == '-' &&
		ident.Valid(id[:2], 2, 2, "", ident.LowerHex) && ident.Valid(id[3:], 12, 12, "", ident.LowerHex)
}

// families names the 1-Wire family codes the kernel's w1_therm driver
// reads as thermometers.
var families = map[string]string{
	"10": "DS18S20",
	"22": "DS1822",
	"28": "DS18B20",
	"3b": "DS1825",
	"42": "DS28EA00",
}

// IsThermometerID reports whether id names a thermometer the kernel can
// read, e.g. 28-0316a2795aff (lower case, as the kernel writes it).
func IsThermometerID(id string) bool { return validID(id) && families[id[:2]] != "" }

// Device is one entry of the kernel's device list.
type Device struct {
	ID   string // e.g. 28-0316a2795aff
	Chip string // e.g. DS18B20; "" for families this package does not read
}

// List returns the 1-Wire devices in dir, sorted by id; bus masters and
// other entries are skipped. A missing dir is not an error: it means the
// w1 overlay is not loaded, and the list is empty.
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
		if !validID(e.Name()) {
			continue
		}
		out = append(out, Device{ID: e.Name(), Chip: families[e.Name()[:2]]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Read converts and reads one thermometer and returns °C. It blocks for
// the conversion inside the kernel and cannot be interrupted.
func Read(dir, id string) (float64, error) {
	devDir := filepath.Join(dir, id)
	data, err := os.ReadFile(filepath.Join(devDir, "w1_slave"))
	if err == nil {
		return ParseSlave(data, family(id))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	data, err = os.ReadFile(filepath.Join(devDir, "temperature"))
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(devDir); errors.Is(statErr, fs.ErrNotExist) {
			return 0, fmt.Errorf("%s in %s: %w", id, dir, ErrNotFound)
		}
		return 0, fmt.Errorf("%s: neither w1_slave nor temperature: %w", devDir, ErrFormat)
	}
	if err != nil {
		// The kernel fails this read with EIO when the CRC does not match.
		return 0, err
	}
	return ParseTemperature(data)
}

// family is the family code of an id such as 28-0316a2795aff; 0 when
// the id has none.
func family(id string) byte {
	f, err := strconv.ParseUint(id[:min(2, len(id))], 16, 8)
	if err != nil {
		return 0
	}
	return byte(f)
}

// ParseTemperature parses the temperature file (m°C).
func ParseTemperature(data []byte) (float64, error) {
	s := strings.TrimSpace(string(data))
	m, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("temperature %q: %w", s, ErrFormat)
	}
	if err := checkMilli(m); err != nil {
		return 0, err
	}
	// -0.0625 °C is what all ones read; without the scratchpad it cannot
	// be told from a real reading, and the kernel truncates it to -62 (or
	// -63 where it shifts instead of dividing).
	if m == -62 || m == -63 {
		return 0, ErrOpenLine
	}
	return float64(m) / 1000, nil
}

// ParseSlave parses the w1_slave file of a thermometer of the given
// family (0x28 for a DS18B20). The temperature is computed from the
// scratchpad, not taken from t=: at 9 to 11 bits (config byte 4) the
// undefined low bits are masked (datasheet Figure 4), which the kernel
// does not do. t= must be what the kernel computes from the same bytes,
// and line 2 must repeat line 1's scratchpad; otherwise the file was cut
// short or corrupted (ErrMismatch, ErrFormat).
func ParseSlave(data []byte, family byte) (float64, error) {
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if len(lines) != 2 {
		return 0, fmt.Errorf("w1_slave has %d lines, want 2: %w", len(lines), ErrFormat)
	}
	head, verdict, ok := strings.Cut(string(lines[0]), ": crc=")
	if !ok {
		return 0, fmt.Errorf("w1_slave line 1 %q: %w", lines[0], ErrFormat)
	}
	spad, err := scratchpad(head)
	if err != nil {
		return 0, err
	}
	if !strings.HasSuffix(verdict, " YES") {
		return 0, fmt.Errorf("crc=%s: %w", verdict, ErrCRC)
	}
	if spad == [9]byte{} {
		return 0, ErrAllZero
	}
	head2, t, ok := strings.Cut(string(lines[1]), " t=")
	if !ok {
		return 0, fmt.Errorf("w1_slave line 2 %q: %w", lines[1], ErrFormat)
	}
	spad2, err := scratchpad(head2)
	if err != nil {
		return 0, fmt.Errorf("w1_slave line 2: %w", err)
	}
	if spad2 != spad {
		return 0, fmt.Errorf("line 2's scratchpad %q is not line 1's %q: %w", head2, head, ErrMismatch)
	}
	m, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil {
		return 0, fmt.Errorf("t=%q: %w", t, ErrFormat)
	}
	if err := checkMilli(m); err != nil {
		return 0, err
	}
	// All ones is an open line; the CRC of all ones is 0xC9, so it only
	// gets here from a kernel that does not check, but then it is caught.
	if spad == [9]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF} {
		return 0, ErrOpenLine
	}
	celsius, kernel, err := convert(spad, family)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(kernel, m) {
		return 0, fmt.Errorf("t=%d, the scratchpad gives %d: %w", m, kernel[0], ErrMismatch)
	}
	return celsius, nil
}

// convert returns the scratchpad's temperature in °C and the m°C values
// a kernel writes as t= for it (w1_therm.c: old kernels divide the raw
// value unmasked; a masked value is accepted too).
func convert(spad [9]byte, family byte) (float64, []int, error) {
	raw := int(int16(uint16(spad[1])<<8 | uint16(spad[0])))
	if family == 0x10 {
		// DS18S20: 0.5 °C steps refined by COUNT_REMAIN and
		// COUNT_PER_C (datasheet "Operation - Measuring Temperature");
		// the kernel's w1_DS18S20_convert_temp in integers.
		perC := int(spad[7])
		if perC == 0 {
			return 0, nil, fmt.Errorf("DS18S20 COUNT_PER_C is 0: %w", ErrFormat)
		}
		var t int
		if spad[1] == 0 {
			t = int(spad[0]>>1) * 1000
		} else {
			t = 1000 * (-(0x100 - int(spad[0])) >> 1)
		}
		t += -250 + 1000*(perC-int(spad[6]))/perC
		return float64(raw>>1) - 0.25 + float64(perC-int(spad[6]))/float64(perC), []int{t}, nil
	}
	res := 9 + int(spad[4]>>5&3)
	masked := raw &^ (1<<(12-res) - 1)
	return float64(masked) / 16, []int{raw * 1000 / 16, masked * 1000 / 16}, nil
}

func checkMilli(m int) error {
	switch m {
	case 85000:
		return ErrPowerOn
	case 127937, 127940:
		return ErrBadValue
	}
	return nil
}

func scratchpad(s string) ([9]byte, error) {
	var spad [9]byte
	f := strings.Fields(s)
	if len(f) != len(spad) {
		return spad, fmt.Errorf("scratchpad %q has %d bytes, want 9: %w", s, len(f), ErrFormat)
	}
	for i, h := range f {
		b, err := strconv.ParseUint(h, 16, 8)
		if err != nil {
			return spad, fmt.Errorf("scratchpad byte %q: %w", h, ErrFormat)
		}
		spad[i] = byte(b)
	}
	return spad, nil
}

// Resolution reads the resolution file (bits, 9..12) of newer kernels;
// ok is false when the kernel has no such file.
func Resolution(dir, id string) (bits int, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, id, "resolution"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	bits, err = strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, false, fmt.Errorf("resolution %q: %w", data, ErrFormat)
	}
	return bits, true, nil
}

// SetResolution writes the resolution file. The kernel allows this to
// root only; the error says so.
func SetResolution(dir, id string, bits int) error {
	p := filepath.Join(dir, id, "resolution")
	err := os.WriteFile(p, []byte(strconv.Itoa(bits)+"\n"), 0)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: only root may change it; run once: echo %d | sudo tee %s", err, bits, p)
	}
	return err
}
