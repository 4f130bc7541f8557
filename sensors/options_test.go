package sensors

import (
	"strings"
	"testing"
	"time"
)

// errText runs get on options m and returns Done's error text ("" for nil).
func errText(m map[string]any, get func(o *Options)) string {
	o := NewOptions(m)
	get(o)
	if err := o.Done(); err != nil {
		return err.Error()
	}
	return ""
}

func TestOptionsString(t *testing.T) {
	o := NewOptions(map[string]any{"id": "28-0316a2795aff", "d": time.Second})
	if got := o.String("id", "x"); got != "28-0316a2795aff" {
		t.Fatal(got)
	}
	if got := o.String("d", ""); got != "1s" {
		t.Fatalf("a Stringer: %q", got)
	}
	if got := o.String("absent", "def"); got != "def" {
		t.Fatal(got)
	}
	if err := o.Done(); err != nil {
		t.Fatal(err)
	}
	if e := errText(map[string]any{"id": 5}, func(o *Options) { o.String("id", "") }); e != "id: want a string, got 5" {
		t.Fatal(e)
	}
}

func TestOptionsStrings(t *testing.T) {
	for _, in := range []any{[]any{"a", "b"}, []string{"a", "b"}, "a, b", "a,b"} {
		o := NewOptions(map[string]any{"q": in})
		if got := o.Strings("q", nil); strings.Join(got, "|") != "a|b" {
			t.Fatalf("%#v read as %q", in, got)
		}
	}
	if got := NewOptions(nil).Strings("q", []string{"x"}); len(got) != 1 || got[0] != "x" {
		t.Fatal("default not used")
	}
	if e := errText(map[string]any{"q": []any{"a", 1}}, func(o *Options) { o.Strings("q", nil) }); !strings.HasPrefix(e, "q: want a list of strings") {
		t.Fatal(e)
	}
	if e := errText(map[string]any{"q": 3}, func(o *Options) { o.Strings("q", nil) }); !strings.HasPrefix(e, "q: want a list of strings") {
		t.Fatal(e)
	}
}

func TestOptionsFloat(t *testing.T) {
	o := NewOptions(map[string]any{"a": 26000, "b": "1.5", "c": float32(2.5), "d": uint16(7)})
	if o.Float("a", 0) != 26000 || o.Float("b", 0) != 1.5 || o.Float("c", 0) != 2.5 || o.Float("d", 0) != 7 || o.Float("e", 3) != 3 {
		t.Fatal("float getters")
	}
	for _, bad := range []any{"wet", ".nan", "Inf", true, []any{1}} {
		if e := errText(map[string]any{"dry": bad}, func(o *Options) { o.Float("dry", 0) }); !strings.HasPrefix(e, "dry: want a number") {
			t.Fatalf("%#v: %q", bad, e)
		}
	}
}

func TestOptionsInt(t *testing.T) {
	o := NewOptions(map[string]any{"a": 72, "b": "0x48", "c": 3.0, "d": " 12 "})
	if o.Int("a", 0) != 72 || o.Int("b", 0) != 0x48 || o.Int("c", 0) != 3 || o.Int("d", 0) != 12 || o.Int("e", 9) != 9 {
		t.Fatal("int getters")
	}
	for _, bad := range []any{"0x4g", 1.5, 1e12, "ten", false} {
		if e := errText(map[string]any{"channel": bad}, func(o *Options) { o.Int("channel", 0) }); !strings.HasPrefix(e, "channel: want an integer") {
			t.Fatalf("%#v: %q", bad, e)
		}
	}
}

func TestOptionsBool(t *testing.T) {
	o := NewOptions(map[string]any{"a": true, "b": "false"})
	if !o.Bool("a", false) || o.Bool("b", true) || !o.Bool("c", true) {
		t.Fatal("bool getters")
	}
	if e := errText(map[string]any{"x": "yes please"}, func(o *Options) { o.Bool("x", false) }); e != "x: want true or false, got yes please" {
		t.Fatal(e)
	}
}

func TestOptionsDuration(t *testing.T) {
	o := NewOptions(map[string]any{"a": "750ms"})
	if o.Duration("a", 0) != 750*time.Millisecond || o.Duration("b", time.Second) != time.Second {
		t.Fatal("duration getters")
	}
	for _, bad := range []any{750, "750", "soon"} {
		if e := errText(map[string]any{"hang": bad}, func(o *Options) { o.Duration("hang", 0) }); !strings.HasPrefix(e, "hang: want a duration with a unit") {
			t.Fatalf("%#v: %q", bad, e)
		}
	}
}

func TestOptionsBus(t *testing.T) {
	o := NewOptions(map[string]any{"bus": "/dev/i2c-1"})
	if o.Bus("bus") != "/dev/i2c-1" || o.Done() != nil {
		t.Fatal("good bus refused")
	}
	cases := map[any]string{
		nil:            "bus: required (e.g. /dev/i2c-1",
		"":             "bus: required",
		"/dev/i2c1":    `bus: "/dev/i2c1" is not an I2C bus name of the form /dev/i2c-N`,
		"i2c-1":        `bus: "i2c-1" is not an I2C bus name`,
		"/dev/i2c-1 ":  `bus: "/dev/i2c-1 " is not an I2C bus name`,
		"/dev/spidev0": `bus: "/dev/spidev0" is not`,
	}
	for in, want := range cases {
		m := map[string]any{}
		if in != nil {
			m["bus"] = in
		}
		if e := errText(m, func(o *Options) { o.Bus("bus") }); !strings.HasPrefix(e, want) {
			t.Errorf("bus %#v: %q, want %q", in, e, want)
		}
	}
}

func TestOptionsAddress(t *testing.T) {
	for in, want := range map[any]uint16{0x76: 0x76, "0x48": 0x48, 3: 3, 0x77: 0x77} {
		o := NewOptions(map[string]any{"address": in})
		if got := o.Address("address", 0); got != want || o.Done() != nil {
			t.Fatalf("%#v: 0x%x %v", in, got, o.Done())
		}
	}
	if got := NewOptions(nil).Address("address", 0x76); got != 0x76 {
		t.Fatal("default address not used")
	}
	cases := map[any]string{
		nil:    "address: required",
		0x80:   "address: 0x80 out of range 0x03..0x77",
		2:      "address: 0x2 out of range 0x03..0x77",
		-1:     "address: -0x1 out of range",
		"0x78": "address: 0x78 out of range",
		"high": `address: want an integer, got "high"`,
	}
	for in, want := range cases {
		m := map[string]any{}
		if in != nil {
			m["address"] = in
		}
		if e := errText(m, func(o *Options) { o.Address("address", 0) }); !strings.HasPrefix(e, want) {
			t.Errorf("address %#v: %q, want %q", in, e, want)
		}
	}
}

func TestOptionsDoneUnknownKeysAndFail(t *testing.T) {
	o := NewOptions(map[string]any{"bus": "/dev/i2c-1", "adress": 0x76, "chanel": 1, "nil": nil})
	o.Bus("bus")
	if o.Has("nil") {
		t.Fatal("a nil value counts as set")
	}
	o.Fail("mode", "%q is not one of %v", "turbo", []string{"normal"})
	want := "mode: \"turbo\" is not one of [normal]\nadress: unknown option\nchanel: unknown option"
	if err := o.Done(); err == nil || err.Error() != want {
		t.Fatalf("Done: %v\nwant:\n%s", err, want)
	}
}
