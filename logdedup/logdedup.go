// Package logdedup folds repeated log lines: a broker down for a day, a
// sensor unplugged for a week must not fill an SD card or the journal with
// the same line every few seconds. The first line goes out; repeats within
// the interval are held back and summed up as repeated=N.
package logdedup

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Every is the interval kitd folds repeats over: a line repeated all day
// costs about a hundred journal lines, not tens of thousands.
const Every = 15 * time.Minute

// maxDedupKeys bounds the memory of New: past it, expired
// entries are forgotten, and if none is expired new lines pass unfiltered
// (better a noisy journal than an unbounded map in a small daemon).
const maxDedupKeys = 512

// New wraps h so that a line identical to one written less than
// every ago (same level, message and attributes, time aside, and numbers
// aside: "read tcp 10.0.0.2:39546->…: connection reset" differs from the
// previous loss only by its local port) is held back.
// The first identical line after every has passed is written with
// repeated=N, the number of lines held back since the last one written: a
// broker down for a day costs one line per interval, not one per retry.
// Only warnings and errors are folded: info lines are state changes
// ("connected", "sensor recovered"), each worth its line however often the
// state flaps, and they say when a run of failures ended. Safe for
// concurrent use, like any Handler.
func New(h slog.Handler, every time.Duration) slog.Handler {
	return newHandler(h, every, time.Now)
}

func newHandler(h slog.Handler, every time.Duration, now func() time.Time) *dedupHandler {
	return &dedupHandler{next: h, st: &dedupState{every: every, now: now, seen: map[string]*dedupEntry{}}}
}

type dedupState struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	seen map[string]*dedupEntry
}

type dedupEntry struct {
	last time.Time // when the line was last written
	held int       // identical lines held back since
}

type dedupHandler struct {
	next slog.Handler
	st   *dedupState
	// prefix is what WithAttrs and WithGroup added, so lines from
	// differently decorated loggers are told apart.
	prefix string
}

func (h *dedupHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *dedupHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	held, write := h.st.admit(h.key(r))
	if !write {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", held))
	}
	return h.next.Handle(ctx, r)
}

func (h *dedupHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		writeAttr(&b, a)
	}
	return &dedupHandler{next: h.next.WithAttrs(as), st: h.st, prefix: b.String()}
}

func (h *dedupHandler) WithGroup(name string) slog.Handler {
	return &dedupHandler{next: h.next.WithGroup(name), st: h.st, prefix: h.prefix + "\x00g:" + name}
}

func (h *dedupHandler) key(r slog.Record) string {
	var b strings.Builder
	b.WriteString(h.prefix)
	b.WriteString("\x00")
	b.WriteString(r.Level.String())
	b.WriteString("\x00")
	writeFolded(&b, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, a)
		return true
	})
	return b.String()
}

func writeAttr(b *strings.Builder, a slog.Attr) {
	b.WriteString("\x00")
	b.WriteString(a.Key)
	b.WriteString("=")
	writeFolded(b, a.Value.Resolve().String())
}

// writeFolded writes s with every run of digits replaced by one '#'.
func writeFolded(b *strings.Builder, s string) {
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteByte(c)
	}
}

// admit decides whether the line with key is written, and how many
// identical lines were held back before it.
func (s *dedupState) admit(key string) (held int, write bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e, ok := s.seen[key]; ok {
		if now.Sub(e.last) < s.every {
			e.held++
			return 0, false
		}
		held = e.held
		e.last, e.held = now, 0
		return held, true
	}
	if len(s.seen) >= maxDedupKeys {
		for k, e := range s.seen {
			if now.Sub(e.last) >= s.every {
				delete(s.seen, k)
			}
		}
		if len(s.seen) >= maxDedupKeys {
			return 0, true
		}
	}
	s.seen[key] = &dedupEntry{last: now}
	return 0, true
}
