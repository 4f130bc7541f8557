package ident

import (
	"regexp"
	"strings"
	"testing"
)

// nameRegexp is what sensor and alert names were checked by.
const nameRegexp = `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`

// Valid agrees with the regexps it replaced, on the edges of each.
func TestValidMatchesTheRegexpsItReplaced(t *testing.T) {
	for _, c := range []struct {
		re         string
		min, max   int
		first, set string
	}{
		{`^[a-zA-Z0-9_]{1,128}$`, 1, 128, "", Alnum + "_"},
		{`^[A-Za-z0-9:_-]{1,64}$`, 1, 64, "", Alnum + ":_-"},
		{nameRegexp, 1, 64, Alnum, Alnum + "_.-"},
		{`^[a-zA-Z0-9_-]{1,64}$`, 1, 64, "", Alnum + "_-"},
		{`^[0-9A-Za-z_-]{1,36}$`, 1, 36, "", Alnum + "_-"},
		{`^[0-9a-f]{12}$`, 12, 12, "", LowerHex},
		{`^[0-9a-f]{2}$`, 2, 2, "", LowerHex},
	} {
		re := regexp.MustCompile(c.re)
		inputs := []string{"", "a", "Z9", "_x", "-x", ".x", "x.y", "a:b", "a/b", "a b", "é", "a\x00",
			"28-0316a2795aff", "0316a2795aff", "0316A2795AFF", "0316a2795afg",
			"28", "2g", strings.Repeat("b", 36), strings.Repeat("b", 37),
			strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
			strings.Repeat("_", 128), strings.Repeat("_", 129)}
		for _, s := range inputs {
			if got, want := Valid(s, c.min, c.max, c.first, c.set), re.MatchString(s); got != want {
				t.Errorf("%s: Valid(%q) = %v, the regexp says %v", c.re, s, got, want)
			}
			if c.re == nameRegexp {
				if got, want := Name(s), re.MatchString(s); got != want {
					t.Errorf("Name(%q) = %v, the regexp says %v", s, got, want)
				}
			}
		}
	}
}
