package shadow

import (
	"context"
	"testing"
	"time"
)

// Shutdown is bounded by its ctx even while a report waits for an answer.
func TestShutdownObeysCtx(t *testing.T) {
	k := newKit(t, t.TempDir(), nil)
	k.s.reporting <- struct{}{} // a report in flight
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := k.s.Shutdown(ctx); !errorsIs(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the ctx's deadline", err)
	}
	// Closing all the same: a late connected:false in the shadow must not
	// be answered with connected:true by an agent on its way out.
	k.s.mu.Lock()
	closing := k.s.closing
	k.s.mu.Unlock()
	if !closing {
		t.Fatal("not closing after a Shutdown that timed out")
	}
}
