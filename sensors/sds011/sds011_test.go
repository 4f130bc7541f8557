package sds011

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

// The control protocol's examples.
var (
	setQuery  = []byte{0xAA, 0xB4, 0x02, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0x02, 0xAB}
	modeReply = []byte{0xAA, 0xC5, 0x02, 0x01, 0x01, 0x00, 0xA1, 0x60, 0x05, 0xAB}
	query     = []byte{0xAA, 0xB4, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0x02, 0xAB}
	example   = []byte{0xAA, 0xC0, 0xD4, 0x04, 0x3A, 0x0A, 0xA1, 0x60, 0x1D, 0xAB} // 123.6, 261.8
)

func TestCommandsAreTheProtocols(t *testing.T) {
	if got := Command(0, 2, 1, 1); !bytes.Equal(got, setQuery) {
		t.Errorf("set query mode: % X", got)
	}
	if got := Command(0, 4); !bytes.Equal(got, query) {
		t.Errorf("query: % X", got)
	}
}

// sensor plays an SDS011: it answers the mode command with modeAnswer
// and each query with the next reply.
func sensor(t *testing.T, modeAnswer []byte, replies ...[]byte) *serialtest.Sensor {
	t.Helper()
	s := serialtest.New(t)
	i := 0
	s.Serve(t, func(s *serialtest.Sensor) error {
		req, err := s.Read(19)
		if err != nil {
			return err
		}
		switch {
		case bytes.Equal(req, setQuery):
			return s.Write(modeAnswer)
		case !bytes.Equal(req, query):
			return fmt.Errorf("request % X", req)
		case i >= len(replies):
			return fmt.Errorf("unexpected query %d", i+1)
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

func port(t *testing.T, s *serialtest.Sensor) *serial.Port {
	t.Helper()
	p, err := serial.Open(s.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func cat(b ...[]byte) []byte { return bytes.Join(b, nil) }

func TestReadsTheProtocolsExample(t *testing.T) {
	other := []byte{0xAA, 0xC0, 0x10, 0x00, 0x20, 0x00, 0xA1, 0x60, 0x31, 0xAB} // 1.6, 3.2
	s := sensor(t,
		cat(other, modeReply), // an active-mode frame before the answer
		example,
		cat([]byte{0x00, 0xAA, 0x13, 0xAB}, example), // garbage before the frame
		cat([]byte{0xAA}, example),                   // AA AA C0
		cat(modeReply, example),                      // a late mode answer
	)
	d, err := New(within(t, serialtest.Safety), port(t, s), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID() != 0xA160 {
		t.Errorf("id %04X", d.ID())
	}
	for i := range 4 {
		pm25, pm10, err := d.Read(within(t, serialtest.Safety))
		if err != nil || pm25 != 123.6 || pm10 != 261.8 {
			t.Fatalf("read %d: %v %v %v", i, pm25, pm10, err)
		}
	}
}

func TestFaultFrames(t *testing.T) {
	bad := bytes.Clone(example)
	bad[8]++
	badTail := bytes.Clone(example)
	badTail[9] = 0xAC
	otherID := []byte{0xAA, 0xC0, 0xD4, 0x04, 0x3A, 0x0A, 0xA1, 0x61, 0x1E, 0xAB}
	over := []byte{0xAA, 0xC0, 0x10, 0x27, 0x10, 0x27, 0xA1, 0x60, 0x6F, 0xAB} // 1000.0
	for _, c := range []struct {
		name  string
		reply []byte
		check func(error) bool
	}{
		{"bad checksum", bad, func(err error) bool {
			var ce *ChecksumError
			return errors.As(err, &ce) && ce.Calculated == 0x1D && ce.Received == 0x1E
		}},
		{"bad tail", badTail, func(err error) bool { return errors.Is(err, ErrFrame) }},
		{"another sensor", otherID, func(err error) bool { return errors.Is(err, ErrFrame) && strings.Contains(err.Error(), "A161") }},
		{"all zero", []byte{0xAA, 0xC0, 0, 0, 0, 0, 0, 0, 0, 0xAB}, func(err error) bool { return errors.Is(err, ErrAllZero) }},
		{"beyond range", over, func(err error) bool {
			var re *RangeError
			return errors.As(err, &re) && re.Value == 1000
		}},
		{"garbage only", bytes.Repeat([]byte{0xAA, 0x00}, 100), func(err error) bool {
			var ge *serial.GarbageError
			return errors.As(err, &ge)
		}},
		{"truncated", example[:6], func(err error) bool {
			var te *serial.TruncatedError
			return errors.As(err, &te) && errors.Is(err, context.DeadlineExceeded)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := New(within(t, serialtest.Safety), port(t, sensor(t, modeReply, c.reply)), nil)
			if err != nil {
				t.Fatal(err)
			}
			deadline := serialtest.Safety
			if c.name == "truncated" {
				deadline = 200 * time.Millisecond
			}
			pm25, pm10, err := d.Read(within(t, deadline))
			if !c.check(err) || pm25 != 0 || pm10 != 0 {
				t.Fatalf("%v %v %v", pm25, pm10, err)
			}
			if !strings.HasPrefix(err.Error(), "sds011: ") || strings.Contains(err.Error(), "sds011: sds011") {
				t.Errorf("error does not name the sensor: %v", err)
			}
		})
	}
}

func TestOpenFaults(t *testing.T) {
	badMode := bytes.Clone(modeReply)
	badMode[8]++
	notSet := []byte{0xAA, 0xC5, 0x02, 0x01, 0x00, 0x00, 0xA1, 0x60, 0x04, 0xAB} // still active mode
	for name, answer := range map[string][]byte{"bad checksum": badMode, "mode not confirmed": notSet} {
		_, err := New(within(t, serialtest.Safety), port(t, sensor(t, answer)), nil)
		if err == nil || !strings.HasPrefix(err.Error(), "sds011: ") || !strings.Contains(err.Error(), "query mode") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Asleep: nothing answers.
	_, err := New(within(t, 50*time.Millisecond), port(t, serialtest.New(t)), nil)
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("asleep: %v", err)
	}
}

func TestKind(t *testing.T) {
	k := Kind()
	if _, err := k.Prepare("pm", sensors.NewOptions(map[string]any{"port": "/etc/passwd"})); err == nil || !strings.Contains(err.Error(), "port: ") {
		t.Errorf("bad port: %v", err)
	}
	s := sensor(t, modeReply, example)
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
	if err != nil || len(v) != 2 || v["pm2_5"] != 123.6 || v["pm10"] != 261.8 {
		t.Fatalf("%v, %v", v, err)
	}
}
