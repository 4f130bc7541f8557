package pms5003

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/serial"
	"github.com/kitd-dev/kitd/sensors/serial/serialtest"
)

// A data frame laid out as the datasheet's Appendix I: CF=1 PM1.0, PM2.5,
// PM10 = 6, 10, 12; atmospheric 5, 8, 9; counts 1041, 310, 52, 4, 1, 0;
// D13 0x9700 (PMS7003 version 0x97, error code 0); check word 0x01F9,
// the sum of the 30 bytes before it.
var example = []byte{
	0x42, 0x4D, 0x00, 0x1C,
	0x00, 0x06, 0x00, 0x0A, 0x00, 0x0C,
	0x00, 0x05, 0x00, 0x08, 0x00, 0x09,
	0x04, 0x11, 0x01, 0x36, 0x00, 0x34, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00,
	0x97, 0x00,
	0x01, 0xF9,
}

// The sensor's answer to the passive-mode command.
var modeAck = []byte{0x42, 0x4D, 0x00, 0x04, 0xE1, 0x00, 0x01, 0x74}

var zeroFrame = func() []byte {
	f := make([]byte, 32)
	copy(f, []byte{0x42, 0x4D, 0x00, 0x1C})
	f[30], f[31] = 0x00, 0x42+0x4D+0x1C
	return f
}()

func TestCommandsAreTheDatasheets(t *testing.T) {
	if got := Command(0xE1, 0); !bytes.Equal(got, []byte{0x42, 0x4D, 0xE1, 0x00, 0x00, 0x01, 0x70}) {
		t.Errorf("passive: % X", got)
	}
	if got := Command(0xE2, 0); !bytes.Equal(got, []byte{0x42, 0x4D, 0xE2, 0x00, 0x00, 0x01, 0x71}) {
		t.Errorf("read: % X", got)
	}
}

// sensor plays a PMS5003 in passive mode: it acknowledges the mode
// change, then answers each read request with the next reply.
func sensor(t *testing.T, replies ...[]byte) *serialtest.Sensor {
	t.Helper()
	s := serialtest.New(t)
	i := 0
	s.Serve(t, func(s *serialtest.Sensor) error {
		req, err := s.Read(7)
		if err != nil {
			return err
		}
		switch {
		case bytes.Equal(req, cmdPassive):
			return s.Write(modeAck)
		case !bytes.Equal(req, cmdRead):
			return fmt.Errorf("request % X", req)
		case i >= len(replies):
			return fmt.Errorf("unexpected read request %d", i+1)
		}
		i++
		return s.Write(replies[i-1])
	})
	return s
}

func within(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func open(t *testing.T, s *serialtest.Sensor) *Dev {
	t.Helper()
	p, err := serial.Open(s.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	d, err := New(within(t, serialtest.Safety), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func cat(b ...[]byte) []byte { return bytes.Join(b, nil) }

func TestReadsFrames(t *testing.T) {
	want := Reading{CF1: [3]uint16{6, 10, 12}, Atm: [3]uint16{5, 8, 9}, Counts: [6]uint16{1041, 310, 52, 4, 1, 0}, Reserved: 0x9700}
	s := sensor(t,
		example,
		cat(modeAck, example),                        // a late mode answer first
		cat([]byte{0x4D, 0x00, 0x42}, example),       // garbage before the frame
		cat([]byte{0x42, 0x4D, 0xFF, 0xFF}, example), // a false header: resync
		cat(example[20:], example),                   // the tail of an earlier frame
	)
	d := open(t, s)
	for i := range 5 {
		r, err := d.Read(within(t, serialtest.Safety))
		if err != nil || r != want {
			t.Fatalf("read %d: %+v, %v", i, r, err)
		}
	}
}

func TestFaultFrames(t *testing.T) {
	bad := bytes.Clone(example)
	bad[31]++
	for _, c := range []struct {
		name  string
		reply []byte
		check func(error) bool
	}{
		{"bad checksum", bad, func(err error) bool {
			var ce *ChecksumError
			return errors.As(err, &ce) && ce.Calculated == 0x01F9 && ce.Received == 0x01FA
		}},
		{"all zero at power-on", zeroFrame, func(err error) bool { return errors.Is(err, ErrNotReady) }},
		{"garbage only", bytes.Repeat([]byte{0x42, 0x00}, 200), func(err error) bool {
			var ge *serial.GarbageError
			return errors.As(err, &ge)
		}},
		{"only short frames", cat(modeAck, modeAck, modeAck, modeAck), func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "frames without data")
		}},
		// Cut short and nothing more: whether the bytes arrive before the
		// deadline or not, it is no reading.
		{"truncated", example[:20], func(err error) bool {
			var te *serial.TruncatedError
			return errors.As(err, &te) && errors.Is(err, context.DeadlineExceeded)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := open(t, sensor(t, c.reply))
			deadline := serialtest.Safety
			if c.name == "truncated" {
				deadline = 200 * time.Millisecond
			}
			r, err := d.Read(within(t, deadline))
			if !c.check(err) || r != (Reading{}) {
				t.Fatalf("%+v, %v", r, err)
			}
			if !strings.HasPrefix(err.Error(), "pms5003: ") || strings.Contains(err.Error(), "pms5003: pms5003") {
				t.Errorf("error does not name the sensor: %v", err)
			}
		})
	}
}

func TestKind(t *testing.T) {
	k := Kind()
	if _, err := k.Prepare("pm", sensors.NewOptions(nil)); err == nil || !strings.Contains(err.Error(), "port: required") {
		t.Errorf("no port: %v", err)
	}
	if _, err := k.Prepare("pm", sensors.NewOptions(map[string]any{"port": "/dev/ttyS0", "channel": 1})); err == nil || !strings.Contains(err.Error(), "channel: unknown option") {
		t.Errorf("unknown option: %v", err)
	}
	s := sensor(t, example)
	open, err := k.Prepare("pm", sensors.NewOptions(map[string]any{"port": s.Path}))
	if err != nil {
		t.Fatal(err)
	}
	drv, err := open(within(t, serialtest.Safety))
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	v, err := drv.Read(within(t, serialtest.Safety))
	if err != nil || len(v) != 3 || v["pm1"] != 5 || v["pm2_5"] != 8 || v["pm10"] != 9 {
		t.Fatalf("%v, %v", v, err)
	}
}
