package hw

import (
	"context"
	"fmt"
)

// chipLock is one chip that several sensors read (the channels of an
// ADS1x15): a read holds it from its first transfer to its last, so one
// sensor's conversion never answers another's read. A channel, so that
// waiting for it respects the read's deadline.
type chipLock chan struct{}

// lockChip returns the lock of the chip at t, shared by every sensor
// opened on this Host at the same bus, mux channel and address.
func (h *Host) lockChip(t target) chipLock {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.chips == nil {
		h.chips = map[target]chipLock{}
	}
	l, ok := h.chips[t]
	if !ok {
		l = make(chipLock, 1)
		h.chips[t] = l
	}
	return l
}

// hold runs fn with the chip, or fails when ctx ends first.
func (l chipLock) hold(ctx context.Context, fn func() error) error {
	select {
	case l <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the chip, which another sensor on it is reading: %w", ctx.Err())
	}
	defer func() { <-l }()
	return fn()
}
