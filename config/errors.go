package config

import "errors"

// ErrFile is returned when the file cannot be read or is not YAML.
var ErrFile = errors.New("config file")
