package telemetry

import (
	"errors"
	"fmt"
)

// CheckDevice is the one rule for a device id, which is the "device" of
// every message, the MQTT client id and the AWS IoT thing name inside the
// shadow's topics: 1-128 of A-Z a-z 0-9 : _ -, AWS's set for thing names.
// That set leaves out everything MQTT topics give a meaning to ('/', '+',
// '#', a leading '$'), so the publisher and the shadow need no rule of
// their own. Errors do not name the field: each caller does (device.id).
func CheckDevice(id string) error {
	if id == "" {
		return errors.New("required (the AWS IoT thing name, also the MQTT client id)")
	}
	ok := len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ':' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%q: use 1-128 letters, digits, ':', '_' or '-'", id)
	}
	return nil
}
