// Package testkit holds the helpers that tests across kitd share: a
// buffer a process or logger writes while the test reads it, a bounded
// wait for a condition, and the in-process MQTT broker behind mutual TLS
// that `kitd demo` runs, for tests that need a broker but not Mosquitto.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// LockedBuffer is a bytes.Buffer safe for one writer (a logger, exec's
// output copier) and a reader (the test, a failure message) at once.
// The zero value is ready to use.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns a copy of everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WaitFor polls cond until it holds, and fails the test naming what it
// waited for once limit has passed. limit bounds a wait that would
// otherwise hang; it is never the thing a test asserts, so make it
// generous enough for a loaded machine and qemu.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
