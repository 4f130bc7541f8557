// Package ident checks names and ids by their length and their bytes: the
// forms AWS gives its rule names, job ids, shadow and template names, and
// the config's sensor and alert names.
//
// A regexp would say each in one line, but a bounded repetition such as
// {1,128} compiles to an instruction per repetition, and as a package
// variable it stays on the heap for the life of the process: eight of them
// were 400 KB of `kitd run`'s live heap, half of it (issue 10).
package ident

import "strings"

// Character sets for Valid.
const (
	Alnum    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	LowerHex = "0123456789abcdef"
)

// Valid reports whether s is min to max bytes long and every byte is in
// set, the first byte in first instead when first is not empty.
func Valid(s string, min, max int, first, set string) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		allowed := set
		if i == 0 && first != "" {
			allowed = first
		}
		if strings.IndexByte(allowed, s[i]) < 0 {
			return false
		}
	}
	return true
}

// Name is the form of a name in the config (a sensor's, an alert's): it
// becomes a shadow key and a wire field, so no spaces, slashes or dollars.
func Name(s string) bool { return Valid(s, 1, 64, Alnum, Alnum+"_.-") }
