// Package wait holds the one wait every driver needs: a datasheet delay
// that ends early when the read's deadline passes, so a read spends its
// time where it can still notice its context.
package wait

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
