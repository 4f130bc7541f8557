// Package datasize parses and prints byte sizes as config files write them:
// "256MiB", "64 KiB", "1GiB", "4096". Binary units only (KiB = 1024), plus
// the SI spellings KB/MB/GB read as the binary ones because that is what
// people mean when they size a buffer.
package datasize

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Size is a number of bytes.
type Size int64

// Common sizes.
const (
	B   Size = 1
	KiB      = 1024 * B
	MiB      = 1024 * KiB
	GiB      = 1024 * MiB
)

// ErrSyntax is returned when a size cannot be parsed.
var ErrSyntax = errors.New("not a size (want e.g. 65536, 64KiB, 256MiB, 1GiB)")

var units = []struct {
	suffix string
	mult   Size
}{
	{"gib", GiB}, {"mib", MiB}, {"kib", KiB},
	{"gb", GiB}, {"mb", MiB}, {"kb", KiB},
	{"g", GiB}, {"m", MiB}, {"k", KiB},
	{"b", B},
}

// Parse reads a size such as "256MiB". A bare number is bytes.
func Parse(s string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := B
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			mult = u.mult
			break
		}
	}
	if t == "" {
		return 0, fmt.Errorf("%q: %w", s, ErrSyntax)
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, ErrSyntax)
	}
	if n != 0 && (n*int64(mult))/int64(mult) != n {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return Size(n) * mult, nil
}

// String prints the size in the largest unit that divides it exactly.
func (s Size) String() string {
	switch {
	case s != 0 && s%GiB == 0:
		return strconv.FormatInt(int64(s/GiB), 10) + "GiB"
	case s != 0 && s%MiB == 0:
		return strconv.FormatInt(int64(s/MiB), 10) + "MiB"
	case s != 0 && s%KiB == 0:
		return strconv.FormatInt(int64(s/KiB), 10) + "KiB"
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalText lets YAML, JSON and the environment carry sizes as text.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText prints the size as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
