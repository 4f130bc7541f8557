package hw

import (
	"context"
	"errors"
	"github.com/kitd-dev/kitd/internal/wait"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw/chipmodel"
	"github.com/kitd-dev/kitd/sensors/w1"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/onewire"
)

// DS18B20 datasheet (19-7487) Table 1 "Temperature/Data Relationship".
var ds18b20Table = []struct {
	raw  uint16
	temp float64
}{
	{0x07D0, 125},
	{0x0191, 25.0625},
	{0x00A2, 10.125},
	{0x0008, 0.5},
	{0x0000, 0},
	{0xFFF8, -0.5},
	{0xFF5E, -10.125},
	{0xFE6F, -25.0625},
	{0xFC90, -55},
}

const probeID = "28-0316a2795aff"

func bridgedOpts(id string) map[string]any {
	return map[string]any{"id": id, "bus": "/dev/i2c-1", "address": 0x18}
}

// sleeps records the Host's waits.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func TestDS18B20BridgeDatasheetTable(t *testing.T) {
	for _, row := range ds18b20Table {
		sim := newDS2482(0x18)
		sim.add(probeID, int16(row.raw))
		h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": sim})
		var s sleeps
		h.Sleep = s.sleep
		v, err := openRead(t, prepare(t, h, "ds18b20", bridgedOpts(probeID)))
		if err != nil {
			t.Fatalf("0x%04X: %v", row.raw, err)
		}
		wantValues(t, v, sensors.Values{"temperature": row.temp}, 0)
		if len(s.d) != 1 || s.d[0] != 750*time.Millisecond {
			t.Errorf("waits %v, want one 750ms conversion", s.d)
		}
		if c, strong := sim.Counts(); c != 1 || strong != 1 {
			t.Errorf("%d conversions, %d with strong pull-up; want 1, 1", c, strong)
		}
		closeHost(t, h)
	}
}

// 85 °C is the power-on value: a sensor that never converted reads it.
func TestDS18B20BridgeBadSignatures(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(*chipmodel.DS18B20)
		want  error
	}{
		{"power-on 85", func(s *chipmodel.DS18B20) { s.NoConvert = true }, w1.ErrPowerOn},
		{"85 converted", func(s *chipmodel.DS18B20) { s.Next = 0x0550 }, w1.ErrPowerOn},
		{"127.94", func(s *chipmodel.DS18B20) { s.Next = 0x07FF }, w1.ErrBadValue},
		{"crc", func(s *chipmodel.DS18B20) { s.BadCRC = true }, w1.ErrCRC},
	} {
		sim := newDS2482(0x18)
		s := sim.add(probeID, 0x0191)
		h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": sim})
		open := prepare(t, h, "ds18b20", bridgedOpts(probeID))
		ctx := context.Background()
		d, err := open(ctx)
		if err != nil {
			t.Fatalf("%s: open: %v", c.name, err)
		}
		c.setup(s)
		v, err := d.Read(ctx)
		if !errors.Is(err, c.want) || v != nil {
			t.Errorf("%s: %v, %v; want %v", c.name, v, err, c.want)
		}
		d.Close()
		closeHost(t, h)
	}
}

// All zeros (data line held low) and all ones (open line: -0.0625 °C)
// are rejected; periph's constructor already refuses all ones at open.
func TestDS18B20ScratchpadSignatures(t *testing.T) {
	if _, err := scratchpadCelsius([9]byte{}, 0x28, 12); !errors.Is(err, w1.ErrAllZero) {
		t.Errorf("all zero: %v", err)
	}
	ones := [9]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	if _, err := scratchpadCelsius(ones, 0x28, 12); !errors.Is(err, w1.ErrOpenLine) {
		t.Errorf("all ones: %v", err)
	}
	sim := newDS2482(0x18)
	s := sim.add(probeID, 0x0191)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": sim})
	d, err := prepare(t, h, "ds18b20", bridgedOpts(probeID))(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.AllZero = true
	if v, err := d.Read(context.Background()); !errors.Is(err, w1.ErrAllZero) {
		t.Errorf("all zero on the wire: %v, %v", v, err)
	}
	d.Close()
	closeHost(t, h)
}

// A sensor that is not on the bus fails to open: nothing answers Match
// ROM, so the scratchpad reads all ones.
func TestDS18B20BridgeMissingSensor(t *testing.T) {
	sim := newDS2482(0x18)
	sim.add("28-000000000001", 0x0191)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": sim})
	_, err := openRead(t, prepare(t, h, "ds18b20", bridgedOpts(probeID)))
	if err == nil || !strings.Contains(err.Error(), probeID) {
		t.Fatalf("err = %v", err)
	}
	closeHost(t, h)
}

// Several sensors read at once share one conversion: one 750 ms wait for
// the bridge, not one per sensor.
func TestDS18B20BridgeSharedConversion(t *testing.T) {
	sim := newDS2482(0x18)
	ids := []string{"28-000000000001", "28-000000000002", "28-000000000003", "28-000000000004"}
	for i, id := range ids {
		sim.add(id, int16(0x0191+i))
	}
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": sim})
	// The sharing window's clock stands still: a reader that a loaded
	// machine brings in after the conversion ended still finds it fresh,
	// as it would within the window on a kit.
	frozen := time.Now()
	h.now = func() time.Time { return frozen }
	// A real wait, so that readers usually arrive while it runs.
	var waits sleeps
	h.Sleep = func(ctx context.Context, d time.Duration) error {
		waits.sleep(ctx, d)
		return wait.Sleep(ctx, 200*time.Millisecond)
	}
	var drivers []sensors.Driver
	for _, id := range ids {
		d, err := prepare(t, h, "ds18b20", bridgedOpts(id))(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		drivers = append(drivers, d)
	}
	var wg sync.WaitGroup
	got := make([]sensors.Values, len(ids))
	errs := make([]error, len(ids))
	for i, d := range drivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = d.Read(context.Background())
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil {
			t.Fatalf("%s: %v", ids[i], errs[i])
		}
		wantValues(t, got[i], sensors.Values{"temperature": float64(0x0191+i) / 16}, 0)
	}
	// Reads right after reuse the conversion.
	if _, err := drivers[0].Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, _ := sim.Counts(); c != 1 || len(waits.d) != 1 {
		t.Errorf("%d conversions, waits %v; want 1 for %d sensors", c, waits.d, len(ids))
	}
	for _, d := range drivers {
		d.Close()
	}
	closeHost(t, h)
}

// A reader whose deadline passes during the shared conversion returns at
// its deadline; the conversion carries on for the others.
func TestDS18B20BridgeDeadline(t *testing.T) {
	sim := newDS2482(0x18)
	sim.add(probeID, 0x0191)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": sim})
	// The conversion lasts until the test ends it: the first read must
	// come back at its deadline while the conversion still runs, which a
	// conversion of fixed length cannot show on a slow machine.
	converting := make(chan struct{})
	var ended sync.Once
	end := func() { ended.Do(func() { close(converting) }) }
	t.Cleanup(end)
	h.Sleep = func(ctx context.Context, d time.Duration) error {
		select {
		case <-converting:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d, err := prepare(t, h, "ds18b20", bridgedOpts(probeID))(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	end()
	// The next read shares the conversion and succeeds.
	v, err := d.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, sensors.Values{"temperature": 25.0625}, 0)
	if c, _ := sim.Counts(); c != 1 {
		t.Errorf("%d conversions, want 1", c)
	}
	d.Close()
	closeHost(t, h)
}

// periph's ds248x keeps its first I2C error for good; the bridge starts
// afresh after an error, so the sensor recovers when the bridge answers
// again.
func TestDS18B20BridgeRecovers(t *testing.T) {
	sim := newDS2482(0x18)
	sim.add(probeID, 0x0191)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": sim})
	d, err := prepare(t, h, "ds18b20", bridgedOpts(probeID))(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sim.SetNack(true)
	if _, err := d.Read(context.Background()); !isRemoteIO(err) {
		t.Fatalf("unplugged bridge: %v", err)
	}
	sim.SetNack(false)
	v, err := d.Read(context.Background())
	if err != nil {
		t.Fatalf("after the bridge answers again: %v", err)
	}
	wantValues(t, v, sensors.Values{"temperature": 25.0625}, 0)
	d.Close()
	closeHost(t, h)
}

// Resolution 9 is written to the sensor's configuration register, the
// conversion wait shrinks to 93.75 ms, and the undefined low bits are
// masked (datasheet Figure 4).
func TestDS18B20BridgeResolution(t *testing.T) {
	sim := newDS2482(0x18)
	s := sim.add(probeID, 0x0197) // 25.4375 at 12 bits
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": sim})
	var w sleeps
	h.Sleep = w.sleep
	opts := bridgedOpts(probeID)
	opts["resolution"] = 9
	v, err := openRead(t, prepare(t, h, "ds18b20", opts))
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, v, sensors.Values{"temperature": 25.0}, 0)
	if spad := sim.Scratchpad(s); spad[4] != 0x1F {
		t.Errorf("config register 0x%02X, want 0x1F (9 bits)", spad[4])
	}
	if len(w.d) != 1 || w.d[0] != 93750*time.Microsecond {
		t.Errorf("waits %v, want 93.75ms", w.d)
	}
	closeHost(t, h)
}

func TestDS18B20BridgeNack(t *testing.T) {
	sim := newDS2482(0x18)
	sim.SetNack(true)
	h := testHost(t, map[string]i2c.BusCloser{"/dev/i2c-1": sim})
	if _, err := openRead(t, prepare(t, h, "ds18b20", bridgedOpts(probeID))); !isRemoteIO(err) {
		t.Fatalf("err = %v", err)
	}
	closeHost(t, h)
}

// romAddress must match the kernel's naming: family, then the serial as
// a 48-bit number, CRC in the top byte.
func TestROMAddress(t *testing.T) {
	a := romAddress("28-0316a2795aff")
	if byte(a) != 0x28 || (uint64(a)>>8)&0xFFFFFFFFFFFF != 0x0316a2795aff {
		t.Fatalf("address %016x", uint64(a))
	}
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(a) >> (8 * i))
	}
	if !onewireCRCok(b[:]) {
		t.Fatalf("address %016x has a bad CRC", uint64(a))
	}
}

// writeW1 makes a fake kernel w1 device directory.
func writeW1(t *testing.T, dir, id string, files map[string]string) {
	t.Helper()
	d := filepath.Join(dir, id)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sysfsRead(t *testing.T, dir string, opts map[string]any) (sensors.Values, error) {
	t.Helper()
	h := testHost(t, nil)
	if opts == nil {
		opts = map[string]any{}
	}
	opts["id"] = probeID
	opts["w1_dir"] = dir
	return openRead(t, prepare(t, h, "ds18b20", opts))
}

func TestDS18B20Sysfs(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		temp  float64
		want  error
	}{
		{"w1_slave", map[string]string{"w1_slave": "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"}, 23.125, nil},
		{"negative", map[string]string{"w1_slave": "5e ff 4b 46 7f ff 0c 10 1c : crc=1c YES\n5e ff 4b 46 7f ff 0c 10 1c t=-10125\n"}, -10.125, nil},
		{"temperature file", map[string]string{"temperature": "21500\n"}, 21.5, nil},
		{"crc NO", map[string]string{"w1_slave": "72 01 4b 46 7f ff 0e 10 57 : crc=5a NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"}, 0, w1.ErrCRC},
		{"power-on", map[string]string{"w1_slave": "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"}, 0, w1.ErrPowerOn},
		{"127.94", map[string]string{"w1_slave": "ff 07 4b 46 7f ff 01 10 ed : crc=ed YES\nff 07 4b 46 7f ff 01 10 ed t=127937\n"}, 0, w1.ErrBadValue},
		{"all zero", map[string]string{"w1_slave": "00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n"}, 0, w1.ErrAllZero},
		{"open line", map[string]string{"temperature": "-62\n"}, 0, w1.ErrOpenLine},
		{"power-on temperature file", map[string]string{"temperature": "85000\n"}, 0, w1.ErrPowerOn},
		{"truncated", map[string]string{"w1_slave": "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"}, 0, w1.ErrFormat},
		{"garbage", map[string]string{"temperature": "hello\n"}, 0, w1.ErrFormat},
		// t= is checked against the scratchpad on its own line: a file
		// cut short, or a t= that is not the scratchpad's temperature,
		// gives no value.
		{"t= cut short", map[string]string{"w1_slave": "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=2312\n"}, 0, w1.ErrMismatch},
		{"t= not the scratchpad's", map[string]string{"w1_slave": "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=24125\n"}, 0, w1.ErrMismatch},
		{"line 2 cut short", map[string]string{"w1_slave": "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b t=23125\n"}, 0, w1.ErrFormat},
		{"line 2 another scratchpad", map[string]string{"w1_slave": "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n73 01 4b 46 7f ff 0d 10 57 t=23125\n"}, 0, w1.ErrMismatch},
		// At 9 and 11 bits (config 0x1f, 0x5f) the low 3 and 1 bits are
		// undefined (datasheet Figure 4) and masked; the kernel's t=
		// includes them.
		{"9 bits", map[string]string{"w1_slave": "91 01 4b 46 1f ff 0f 10 b5 : crc=b5 YES\n91 01 4b 46 1f ff 0f 10 b5 t=25062\n"}, 25.0, nil},
		{"11 bits", map[string]string{"w1_slave": "93 01 4b 46 5f ff 0d 10 42 : crc=42 YES\n93 01 4b 46 5f ff 0d 10 42 t=25187\n"}, 25.125, nil},
		{"neither file", map[string]string{"name": probeID}, 0, w1.ErrFormat},
	} {
		dir := t.TempDir()
		writeW1(t, dir, probeID, c.files)
		v, err := sysfsRead(t, dir, nil)
		if c.want != nil {
			if !errors.Is(err, c.want) || v != nil {
				t.Errorf("%s: %v, %v; want %v", c.name, v, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		wantValues(t, v, sensors.Values{"temperature": c.temp}, 0)
	}
}

func TestDS18B20SysfsMissing(t *testing.T) {
	_, err := sysfsRead(t, t.TempDir(), nil)
	if !errors.Is(err, w1.ErrNotFound) || !strings.Contains(err.Error(), "dtoverlay=w1-gpio") {
		t.Fatalf("err = %v", err)
	}
}

func TestDS18B20SysfsResolution(t *testing.T) {
	dir := t.TempDir()
	writeW1(t, dir, probeID, map[string]string{
		"temperature": "21500\n",
		"resolution":  "12\n",
	})
	if _, err := sysfsRead(t, dir, map[string]any{"resolution": 10}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, probeID, "resolution"))
	if err != nil || strings.TrimSpace(string(b)) != "10" {
		t.Fatalf("resolution file %q, %v; want 10", b, err)
	}
	// A kernel without the file: the option cannot be honoured.
	dir = t.TempDir()
	writeW1(t, dir, probeID, map[string]string{"temperature": "21500\n"})
	if _, err := sysfsRead(t, dir, map[string]any{"resolution": 10}); err == nil || !strings.Contains(err.Error(), "no resolution file") {
		t.Fatalf("err = %v", err)
	}
}

func onewireCRCok(b []byte) bool { return onewire.CheckCRC(b) }
