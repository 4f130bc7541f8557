package update

import (
	"fmt"
	"strconv"
	"strings"
)

// semver is a parsed MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] (semver.org
// 2.0.0), with an optional leading "v" as git tags have.
type semver struct {
	num [3]uint64
	pre []string
}

// parseVersion parses v; it is also the check that a version is safe as a
// directory name (digits, letters, '.', '-', '+').
func parseVersion(v string) (semver, error) {
	var s semver
	rest := strings.TrimPrefix(v, "v")
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		if !identifiers(rest[i+1:], false) {
			return s, fmt.Errorf("version %q: bad build metadata", v)
		}
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		if !identifiers(rest[i+1:], true) {
			return s, fmt.Errorf("version %q: bad pre-release", v)
		}
		s.pre = strings.Split(rest[i+1:], ".")
		rest = rest[:i]
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return s, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH (semver)", v)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || (len(p) > 1 && p[0] == '0') {
			return s, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH (semver)", v)
		}
		s.num[i] = n
	}
	return s, nil
}

func identifiers(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		for _, c := range id {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
		}
		if pre && len(id) > 1 && id[0] == '0' && isNum(id) {
			return false
		}
	}
	return true
}

func isNum(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// compare orders a and b by semver precedence: -1, 0 or +1.
func (a semver) compare(b semver) int {
	for i := range a.num {
		if a.num[i] != b.num[i] {
			if a.num[i] < b.num[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1 // a release follows its pre-releases
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		if x == y {
			continue
		}
		xn, yn := isNum(x), isNum(y)
		switch {
		case xn && yn:
			xi, _ := strconv.ParseUint(x, 10, 64)
			yi, _ := strconv.ParseUint(y, 10, 64)
			if xi < yi {
				return -1
			}
			return 1
		case xn:
			return -1 // numeric identifiers sort first
		case yn:
			return 1
		case x < y:
			return -1
		default:
			return 1
		}
	}
	switch {
	case len(a.pre) < len(b.pre):
		return -1
	case len(a.pre) > len(b.pre):
		return 1
	}
	return 0
}

// IsUpgrade says whether installing to over running is an upgrade.
// A running version that is not semver (a development build, "dev") is
// older than every release, so a developer's kit takes any release; the
// target must always be semver.
func IsUpgrade(running, to string) (bool, error) {
	t, err := parseVersion(to)
	if err != nil {
		return false, err
	}
	r, err := parseVersion(running)
	if err != nil {
		return true, nil
	}
	return t.compare(r) > 0, nil
}
