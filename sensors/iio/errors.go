package iio

import "errors"

// ErrNotFound is returned when no device has the name.
var ErrNotFound = errors.New("iio: no such device")

// ErrFormat is returned when a sysfs file does not hold a number.
var ErrFormat = errors.New("not a number")
