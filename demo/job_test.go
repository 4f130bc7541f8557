package demo

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/sim"
)

func runDemo(t *testing.T, job string, until ...string) string {
	t.Helper()
	reg, err := sensors.NewRegistry(sim.Kind())
	if err != nil {
		t.Fatal(err)
	}
	var out testkit.LockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Out: &out, Err: &out, Log: slog.New(slog.DiscardHandler), Registry: reg,
			Clock: clock.New(clock.Config{}), Job: []byte(job)})
	}()
	testkit.WaitFor(t, 60*time.Second, "the demo to show "+strings.Join(until, ", "), func() bool {
		o := out.String()
		for _, u := range until {
			if !strings.Contains(o, u) {
				return false
			}
		}
		return true
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	return out.String()
}

// `kitd demo --job` sends the document and prints each status change.
func TestDemoJob(t *testing.T) {
	o := runDemo(t, `{"operation":"kitd.read-now"}`,
		"job      demo-job QUEUED\n", "job      demo-job IN_PROGRESS", "job      demo-job SUCCEEDED")
	if strings.Count(o, "job      demo-job IN_PROGRESS") != 1 {
		t.Errorf("IN_PROGRESS printed more than once (progress within a status is no change):\n%s", o)
	}
}

// A restart job: the demo starts the kit again, as systemd would, and
// the execution ends SUCCEEDED.
func TestDemoJobRestart(t *testing.T) {
	o := runDemo(t, `{"operation":"kitd.restart"}`, "starting it again, as systemd would", "job      demo-job SUCCEEDED")
	if !strings.Contains(o, `restarted="true"`) {
		t.Errorf("output:\n%s", o)
	}
}
