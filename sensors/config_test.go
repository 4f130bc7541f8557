package sensors

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// i2cKind is a driver kind with the usual I2C options.
func i2cKind() Kind {
	return Kind{
		Name: "i2cthing",
		Prepare: func(name string, o *Options) (Opener, error) {
			o.Bus("bus")
			o.Address("address", 0)
			o.Int("channel", 0)
			return func(context.Context) (Driver, error) { return nil, nil }, o.Done()
		},
	}
}

func configRegistry(t *testing.T) *Registry {
	t.Helper()
	reg, err := NewRegistry(i2cKind(), probeKind(map[string]*probe{}))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func goodI2C(name string) Config {
	return Config{Name: name, Driver: "i2cthing", Interval: 10 * time.Second,
		Options: map[string]any{"bus": "/dev/i2c-1", "address": 0x48}}
}

func TestValidateConfigsAcceptsGood(t *testing.T) {
	cfgs := []Config{goodI2C("soil-1"), goodI2C("soil-2"), goodI2C("air_1.b")}
	cfgs[2].Calibrate = map[string]Calibration{"temperature": {Offset: -0.4, Scale: ptr(1.02)}}
	cfgs[2].Deadband = 0.1
	if err := ValidateConfigs(configRegistry(t), cfgs); err != nil {
		t.Fatal(err)
	}
	if err := ValidateConfigs(configRegistry(t), nil); err != nil {
		t.Fatalf("no sensors: %v", err)
	}
}

// Each rule, tested at index 2 so the error must name sensors[2] (soil-1).
func TestValidateConfigsRules(t *testing.T) {
	cases := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"bad bus", func(c *Config) { c.Options["bus"] = "/dev/i2c1" }, `sensors[2] (soil-1).options.bus: "/dev/i2c1" is not an I2C bus name of the form /dev/i2c-N`},
		{"missing bus", func(c *Config) { delete(c.Options, "bus") }, `sensors[2] (soil-1).options.bus: required`},
		{"address out of range", func(c *Config) { c.Options["address"] = 0x80 }, `sensors[2] (soil-1).options.address: 0x80 out of range 0x03..0x77`},
		{"unknown option", func(c *Config) { c.Options["adress"] = 0x48 }, `sensors[2] (soil-1).options.adress: unknown option`},
		{"duplicate name", func(c *Config) { c.Name = "a" }, `sensors[2] (a).name: duplicate of sensors[0]`},
		{"zero interval", func(c *Config) { c.Interval = 0 }, `sensors[2] (soil-1).interval: must be positive`},
		{"negative interval", func(c *Config) { c.Interval = -time.Second }, `sensors[2] (soil-1).interval: must be positive`},
		{"tiny interval", func(c *Config) { c.Interval = 10 * time.Millisecond }, `sensors[2] (soil-1).interval: must be at least 100ms`},
		{"huge interval", func(c *Config) { c.Interval = 48 * time.Hour }, `sensors[2] (soil-1).interval: must be at most 24h`},
		{"unknown driver", func(c *Config) { c.Driver = "bme281" }, `sensors[2] (soil-1).driver: unknown driver "bme281" (known: [i2cthing probe])`},
		{"no driver", func(c *Config) { c.Driver = "" }, `sensors[2] (soil-1).driver: required`},
		{"no name", func(c *Config) { c.Name = "" }, `sensors[2].name: required`},
		{"bad name", func(c *Config) { c.Name = "soil 1" }, `sensors[2] (soil 1).name: "soil 1": use letters`},
		{"long name", func(c *Config) { c.Name = strings.Repeat("x", 65) }, `.name: "xxxx`},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, `sensors[2] (soil-1).timeout: must be positive`},
		{"negative deadband", func(c *Config) { c.Deadband = -1 }, `sensors[2] (soil-1).deadband: must be a finite number, not negative`},
		{"NaN deadband", func(c *Config) { c.Deadband = math.NaN() }, `sensors[2] (soil-1).deadband: must be a finite number`},
		{"negative max_silence", func(c *Config) { c.MaxSilence = -time.Minute }, `sensors[2] (soil-1).max_silence: must be positive`},
		{"zero scale", func(c *Config) { c.Calibrate = map[string]Calibration{"moisture": {Scale: ptr(0.0)}} }, `sensors[2] (soil-1).calibrate.moisture.scale: must be a finite number other than 0`},
		{"Inf scale", func(c *Config) { c.Calibrate = map[string]Calibration{"moisture": {Scale: ptr(math.Inf(1))}} }, `sensors[2] (soil-1).calibrate.moisture.scale: must be a finite number`},
		{"NaN offset", func(c *Config) { c.Calibrate = map[string]Calibration{"moisture": {Offset: math.NaN()}} }, `sensors[2] (soil-1).calibrate.moisture.offset: must be a finite number`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgs := []Config{goodI2C("a"), goodI2C("b"), goodI2C("soil-1")}
			tc.edit(&cfgs[2])
			err := ValidateConfigs(configRegistry(t), cfgs)
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("error %q, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestValidateConfigsReportsEveryError(t *testing.T) {
	bad := goodI2C("soil-1")
	bad.Interval = 0
	bad.Options = map[string]any{"bus": "i2c", "address": 0x99, "x": 1}
	err := ValidateConfigs(configRegistry(t), []Config{goodI2C("ok"), bad, {Name: "ok", Driver: "nope", Interval: time.Second}})
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		"sensors[1] (soil-1).interval: must be positive",
		`sensors[1] (soil-1).options.bus: "i2c" is not an I2C bus name of the form /dev/i2c-N`,
		"sensors[1] (soil-1).options.address: 0x99 out of range 0x03..0x77",
		"sensors[1] (soil-1).options.x: unknown option",
		"sensors[2] (ok).name: duplicate of sensors[0]",
		`sensors[2] (ok).driver: unknown driver "nope" (known: [i2cthing probe])`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestConfigDefaults(t *testing.T) {
	if !(Config{}).IsEnabled() || !(Config{Enabled: ptr(true)}).IsEnabled() || (Config{Enabled: ptr(false)}).IsEnabled() {
		t.Fatal("IsEnabled")
	}
	if got := (Calibration{Offset: 2}).Apply(10); got != 12 {
		t.Fatalf("nil scale means 1: %v", got)
	}
	if got := (Calibration{Offset: -1, Scale: ptr(0.5)}).Apply(10); got != 4 {
		t.Fatalf("scale then offset: %v", got)
	}
}

func TestTimeoutFor(t *testing.T) {
	k := Kind{Timeout: 2 * time.Second}
	if timeoutFor(Config{Timeout: time.Second}, k) != time.Second {
		t.Fatal("config timeout not first")
	}
	if timeoutFor(Config{}, k) != 2*time.Second {
		t.Fatal("kind timeout not second")
	}
	if timeoutFor(Config{}, Kind{}) != DefaultTimeout {
		t.Fatal("default timeout not last")
	}
}

func TestRegistry(t *testing.T) {
	if _, err := NewRegistry(i2cKind(), i2cKind()); err == nil {
		t.Fatal("duplicate kind accepted")
	}
	if _, err := NewRegistry(Kind{Name: "x"}); err == nil {
		t.Fatal("kind without Prepare accepted")
	}
	reg := configRegistry(t)
	if _, ok := reg.Lookup("i2cthing"); !ok {
		t.Fatal("lookup")
	}
	if got := strings.Join(reg.Names(), ","); got != "i2cthing,probe" {
		t.Fatal(got)
	}
}

// addrClaim conflicts with another addrClaim of the same address.
type addrClaim int

func (a addrClaim) Conflict(other Claim) string {
	if b, ok := other.(addrClaim); ok && a == b {
		return fmt.Sprintf("both at %d", a)
	}
	return ""
}

// Claims declared in Prepare are compared across sensors, enabled or
// not; each conflict names both sensors once, and a sensor whose options
// fail claims nothing.
func TestValidateConfigsClaims(t *testing.T) {
	kind := Kind{Name: "chip", Prepare: func(_ string, o *Options) (Opener, error) {
		a := o.Int("addr", 0)
		if a < 0 {
			o.Fail("addr", "negative")
		}
		o.Claim(addrClaim(a))
		return nil, o.Done()
	}}
	reg, err := NewRegistry(kind)
	if err != nil {
		t.Fatal(err)
	}
	off := false
	cfgs := []Config{
		{Name: "a", Driver: "chip", Interval: time.Second, Options: map[string]any{"addr": 1}},
		{Name: "b", Driver: "chip", Interval: time.Second, Options: map[string]any{"addr": 2}},
		{Name: "c", Driver: "chip", Interval: time.Second, Options: map[string]any{"addr": 1}, Enabled: &off},
		{Name: "d", Driver: "chip", Interval: time.Second, Options: map[string]any{"addr": -1}},
	}
	err = ValidateConfigs(reg, cfgs)
	if err == nil {
		t.Fatal("accepted")
	}
	got := err.Error()
	if !strings.Contains(got, "sensors[2] (c).options: conflicts with sensors[0] (a): both at 1") || strings.Count(got, "conflicts") != 1 {
		t.Fatalf("err = %v", err)
	}
}
