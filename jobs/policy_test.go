package jobs

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/telemetry"
)

// noJobsPolicy is a kit policy without the jobs grants: the kit may not
// subscribe to, or publish on, its jobs topics (the service may).
type noJobsPolicy struct {
	mqtt.HookBase
	published atomic.Int32 // jobs requests the kit published anyway
}

func (h *noJobsPolicy) ID() string { return "no-jobs-policy" }
func (h *noJobsPolicy) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}
func (h *noJobsPolicy) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (h *noJobsPolicy) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.ID != thing || !strings.Contains(topic, "/jobs/") {
		return true
	}
	if write {
		h.published.Add(1)
	}
	return false
}

// Without the jobs policy the kit is refused its first subscription,
// publishes no jobs request (AWS would close the connection for it) and
// delivers its readings as ever.
func TestWithoutJobsPolicy(t *testing.T) {
	hook := &noJobsPolicy{}
	r := newRigWithHook(t, 0, hook)
	ran := make(chan struct{}, 1)
	r.queue("never", map[string]any{"operation": "op"})
	k := r.startKit(map[string]Operation{"op": opFunc(func(_ context.Context, e *Execution) Result {
		ran <- struct{}{}
		return Result{Status: Succeeded}
	})}, 0)
	for i := range 10 {
		rec, err := telemetry.MarshalRecord(nil, telemetry.Reading{Sensor: "s", Time: time.Now(), Values: map[string]float64{"x": float64(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.buf.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 30*time.Second, "10 readings delivered", func() bool { return k.pub.Stats().Delivered >= 10 })
	// The client gives up on this connection right after this line.
	testkit.WaitFor(t, 30*time.Second, "the refused subscription logged", func() bool {
		return strings.Contains(r.logs.String(), "jobs: subscribe failed; waiting for the next connection")
	})
	if n := hook.published.Load(); n != 0 {
		t.Errorf("%d jobs requests published without the right to", n)
	}
	if s := r.emu.Status(thing, "never"); s != "QUEUED" {
		t.Errorf("the job is %s", s)
	}
	select {
	case <-ran:
		t.Error("the operation ran")
	default:
	}
	if c := k.pub.Stats().Reconnects; c != 0 {
		t.Errorf("%d reconnects", c)
	}
}
