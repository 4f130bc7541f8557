package mhz19

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

// The datasheet's example: FF 86 02 20 00 00 00 00 58 is 544 ppm.
var example = []byte{0xFF, 0x86, 0x02, 0x20, 0x00, 0x00, 0x00, 0x00, 0x58}

func up(d time.Duration) func() (time.Duration, error) {
	return func() (time.Duration, error) { return d, nil }
}

// answering returns a pty sensor that answers each read request with the
// next of replies, checking the request is the datasheet's.
func answering(t *testing.T, replies ...[]byte) *serialtest.Sensor {
	t.Helper()
	s := serialtest.New(t)
	i := 0
	s.Serve(t, func(s *serialtest.Sensor) error {
		req, err := s.Read(9)
		if err != nil {
			return err
		}
		if !bytes.Equal(req, cmdRead[:]) {
			return fmt.Errorf("request % X, want % X", req, cmdRead)
		}
		if i >= len(replies) {
			return fmt.Errorf("unexpected request %d", i+1)
		}
		i++
		return s.Write(replies[i-1])
	})
	return s
}

func open(t *testing.T, s *serialtest.Sensor, opts *Opts) *Dev {
	t.Helper()
	p, err := serial.Open(s.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return New(p, opts)
}

func within(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func TestChecksumDatasheetExamples(t *testing.T) {
	if c := Checksum(cmdRead[:]); c != 0x79 {
		t.Errorf("request checksum 0x%02X, want 0x79", c)
	}
	if c := Checksum(example); c != 0x58 {
		t.Errorf("response checksum 0x%02X, want 0x58", c)
	}
}

func TestReadsDatasheetExample(t *testing.T) {
	s := answering(t, example, append([]byte{0x00, 0x13, 0xFF, 0x0D}, example...))
	d := open(t, s, &Opts{Warmup: 3 * time.Minute, Uptime: up(time.Hour)})
	for _, what := range []string{"clean", "garbage before the frame"} {
		ppm, err := d.CO2(within(t, serialtest.Safety))
		if err != nil || ppm != 544 {
			t.Fatalf("%s: %d, %v; want 544", what, ppm, err)
		}
	}
}

func TestFaultFrames(t *testing.T) {
	for _, c := range []struct {
		name  string
		reply []byte
		check func(error) bool
	}{
		{"bad checksum", []byte{0xFF, 0x86, 0x02, 0x20, 0x00, 0x00, 0x00, 0x00, 0x59}, func(err error) bool {
			var ce *ChecksumError
			return errors.As(err, &ce) && ce.Calculated == 0x58 && ce.Received == 0x59
		}},
		{"all zero", []byte{0xFF, 0x86, 0, 0, 0, 0, 0, 0, 0x7A}, func(err error) bool { return errors.Is(err, ErrAllZero) }},
		{"beyond range", []byte{0xFF, 0x86, 0x27, 0x11, 0, 0, 0, 0, 0x42}, func(err error) bool {
			var re *RangeError
			return errors.As(err, &re) && re.PPM == 10001
		}},
		{"garbage only", bytes.Repeat([]byte{0x55}, 100), func(err error) bool {
			var ge *serial.GarbageError
			return errors.As(err, &ge)
		}},
		// Cut short and nothing more: whether the four bytes arrive
		// before the deadline or not, it is no reading.
		{"truncated", example[:4], func(err error) bool {
			var te *serial.TruncatedError
			return errors.As(err, &te) && errors.Is(err, context.DeadlineExceeded)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := answering(t, c.reply)
			d := open(t, s, &Opts{Warmup: time.Minute, Uptime: up(time.Hour)})
			deadline := serialtest.Safety
			if c.name == "truncated" {
				deadline = 200 * time.Millisecond
			}
			ppm, err := d.CO2(within(t, deadline))
			if !c.check(err) || ppm != 0 {
				t.Fatalf("%d, %v", ppm, err)
			}
			if !strings.HasPrefix(err.Error(), "mhz19: ") || strings.Contains(err.Error(), "mhz19: mhz19") {
				t.Errorf("error does not name the sensor: %v", err)
			}
		})
	}
}

// Within the preheat time a good frame is an error carrying what it
// discarded; after it, the same frame is a reading.
func TestWarmUp(t *testing.T) {
	s := answering(t, example, example)
	uptime := 90 * time.Second
	d := open(t, s, &Opts{Warmup: 3 * time.Minute, Uptime: func() (time.Duration, error) { return uptime, nil }})
	_, err := d.CO2(within(t, serialtest.Safety))
	var we *WarmingUpError
	if !errors.As(err, &we) || we.PPM != 544 || we.Remaining != 90*time.Second || !strings.Contains(err.Error(), "warming up") {
		t.Fatalf("at 90s: %v", err)
	}
	uptime = 3 * time.Minute
	if ppm, err := d.CO2(within(t, serialtest.Safety)); ppm != 544 || err != nil {
		t.Fatalf("at 3m: %d, %v", ppm, err)
	}
}

func TestNoAnswer(t *testing.T) {
	s := serialtest.New(t)
	d := open(t, s, &Opts{})
	_, err := d.CO2(within(t, 50*time.Millisecond))
	var te *serial.TruncatedError
	if !errors.As(err, &te) || te.Got != 0 || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("%v", err)
	}
}

func TestKindOptions(t *testing.T) {
	k := Kind()
	for _, c := range []struct {
		opts map[string]any
		want string
	}{
		{nil, "port: required"},
		{map[string]any{"port": "ttyS0"}, "port: \"ttyS0\" is not a serial device path"},
		{map[string]any{"port": "/dev/ttyS0", "warmup": "-1s"}, "warmup: -1s out of range"},
		{map[string]any{"port": "/dev/ttyS0", "warmup": 3}, "warmup: want a duration"},
		{map[string]any{"port": "/dev/ttyS0", "baud": 9600}, "baud: unknown option"},
	} {
		if _, err := k.Prepare("co2", sensors.NewOptions(c.opts)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.opts, err, c.want)
		}
	}
	// Form only: a port that does not exist on this machine is fine.
	if _, err := k.Prepare("co2", sensors.NewOptions(map[string]any{"port": "/dev/ttyAMA9", "warmup": "1m"})); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

func TestKindReads(t *testing.T) {
	s := answering(t, example)
	open, err := KindWith(up(time.Hour)).Prepare("co2", sensors.NewOptions(map[string]any{"port": s.Path}))
	if err != nil {
		t.Fatal(err)
	}
	drv, err := open(within(t, serialtest.Safety))
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	v, err := drv.Read(within(t, serialtest.Safety))
	if err != nil || len(v) != 1 || v["co2"] != 544 {
		t.Fatalf("%v, %v", v, err)
	}
}
