package telemetry

import (
	"strings"
	"testing"
)

func TestCheckDevice(t *testing.T) {
	for _, id := range []string{"kit-001", "a", "Kit_1:b", strings.Repeat("k", 128)} {
		if err := CheckDevice(id); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
	for _, tc := range []struct{ id, want string }{
		{"", "required"},
		{strings.Repeat("k", 129), "use 1-128 letters"},
		// What MQTT topics give a meaning to: a device id is a topic level.
		{"kits/1", `"kits/1": use 1-128`},
		{"kit+", "use 1-128"},
		{"kit#", "use 1-128"},
		{"$kit", "use 1-128"},
		{"kit 1", "use 1-128"},
		{"kit.1", "use 1-128"},
		{"kité", "use 1-128"},
	} {
		err := CheckDevice(tc.id)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.id, err, tc.want)
		}
	}
}
