package telemetry

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// refString is the plain rune-at-a-time JSON string writer that
// appendString, which copies runs, must match byte for byte.
func refString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

func checkString(t *testing.T, s string) {
	t.Helper()
	want := refString(s)
	if got := appendString([]byte("x"), s); string(got) != "x"+want {
		t.Fatalf("appendString(%q) = %s, want %s", s, got[1:], want)
	}
	if got := appendString(nil, []byte(s)); string(got) != want {
		t.Fatalf("appendString([]byte %q) = %s, want %s", s, got, want)
	}
	if !json.Valid([]byte(want)) {
		t.Fatalf("%s is not JSON", want)
	}
}

func TestAppendStringMatchesReference(t *testing.T) {
	for _, s := range []string{"", "soil-1", `a"b`, `a\b`, "\x00\x1f\x7f", "日本", "\xef\xbf\xbd", "\xff", "a\xffb\xfe",
		"\xe6\x97", "é\xe6\x97", "tab\there", `"`, `\`, "\u2028<>&"} {
		checkString(t, s)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	alphabet := []string{"a", "Z", "0", "-", `"`, `\`, "\n", "\x01", "\x7f", "é", "日", "\xff", "\xe6", "\xbf", "\xef\xbf\xbd", "𝄞"}
	for range 200_000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		checkString(t, b.String())
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"soil-1", "a\"b\\c\n", "日本\xff"} {
		f.Add(s)
	}
	f.Fuzz(checkString)
}
