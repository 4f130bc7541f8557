package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/telemetry"
)

// Jobs run one at a time, in the order they were queued, each going
// QUEUED → IN_PROGRESS (with progress details) → SUCCEEDED.
func TestJobsRunInOrder(t *testing.T) {
	r := newRig(t, 0)
	var rec recorder
	var running atomic.Int32
	op := opFunc(func(ctx context.Context, e *Execution) Result {
		if running.Add(1) != 1 {
			t.Error("two executions ran at once")
		}
		defer running.Add(-1)
		rec.add(e)
		if err := e.Progress(ctx, map[string]string{"step": "half way"}); err != nil {
			return Result{Status: Failed, Details: map[string]string{"reason": err.Error()}}
		}
		return Result{Status: Succeeded, Details: map[string]string{"done": e.JobID}}
	})
	r.queue("job-a", map[string]any{"operation": "test.op"})
	r.queue("job-b", map[string]any{"operation": "test.op"})
	r.queue("job-c", map[string]any{"operation": "test.op"})
	r.startKit(map[string]Operation{"test.op": op}, 0)
	for _, id := range []string{"job-a", "job-b", "job-c"} {
		x := r.waitStatus(id, "SUCCEEDED")
		if x.StatusDetails["done"] != id {
			t.Errorf("%s: details %v", id, x.StatusDetails)
		}
		if got := r.statuses(id); !slices.Equal(got, []string{"QUEUED", "IN_PROGRESS", "SUCCEEDED"}) {
			t.Errorf("%s: statuses %v", id, got)
		}
		saw := false
		for _, c := range r.emu.History(thing, id) {
			if c.Status == "IN_PROGRESS" && c.StatusDetails["step"] == "half way" && c.StatusDetails["attempt"] == "1" {
				saw = true
			}
		}
		if !saw {
			t.Errorf("%s: no IN_PROGRESS with the progress details: %+v", id, r.emu.History(thing, id))
		}
	}
	var order []string
	for _, e := range rec.all() {
		order = append(order, e.JobID)
		if e.Resumed {
			t.Errorf("%s: Resumed on its first run", e.JobID)
		}
	}
	if !slices.Equal(order, []string{"job-a", "job-b", "job-c"}) {
		t.Errorf("order %v", order)
	}
	// A job queued while the kit is idle is picked up by notify-next.
	r.queue("job-d", map[string]any{"operation": "test.op"})
	r.waitStatus("job-d", "SUCCEEDED")
}

// An unknown operation is REJECTED with the list of known ones; malformed
// documents are REJECTED saying what is wrong; the queue goes on.
func TestBadDocumentsRejected(t *testing.T) {
	r := newRig(t, 0)
	ok := opFunc(func(context.Context, *Execution) Result { return Result{Status: Succeeded} })
	r.queue("unknown", map[string]any{"operation": "kitd.selfdestruct"})
	r.queue("no-op", map[string]any{"url": "https://example.com"})
	r.queue("op-number", map[string]any{"operation": 7})
	r.queue("bad-step", map[string]any{"operation": "a.op", "step_timeout_minutes": "soon"})
	r.queue("good", map[string]any{"operation": "a.op"})
	r.startKit(map[string]Operation{"a.op": ok, "b.op": ok}, 0)
	x := r.waitStatus("unknown", "REJECTED")
	if !strings.Contains(x.StatusDetails["reason"], `unknown operation "kitd.selfdestruct"`) || x.StatusDetails["known"] != "a.op,b.op" {
		t.Errorf("unknown: %v", x.StatusDetails)
	}
	for id, want := range map[string]string{
		"no-op":     `no "operation" field`,
		"op-number": `"operation" must be a non-empty string`,
		"bad-step":  `"step_timeout_minutes" must be an integer from 1 to 10080`,
	} {
		x := r.waitStatus(id, "REJECTED")
		if !strings.Contains(x.StatusDetails["reason"], want) {
			t.Errorf("%s: reason %q, want it to say %q", id, x.StatusDetails["reason"], want)
		}
	}
	r.waitStatus("good", "SUCCEEDED")
}

// An operation still running at its step timeout is cancelled and the
// execution FAILED with the reason, before the service's own timer.
func TestStepTimeout(t *testing.T) {
	r := newRig(t, 0) // the service's minute is a real one
	cancelled := make(chan struct{})
	hang := opFunc(func(ctx context.Context, e *Execution) Result {
		<-ctx.Done()
		close(cancelled)
		return Result{Status: Failed, Details: map[string]string{"reason": "cancelled"}}
	})
	r.queue("slow", map[string]any{"operation": "hang", "step_timeout_minutes": 2})
	r.queue("next", map[string]any{"operation": "ok"})
	ok := opFunc(func(context.Context, *Execution) Result { return Result{Status: Succeeded} })
	// 2 "minutes" of 300 ms: the operation is cancelled at 540 ms.
	r.startKit(map[string]Operation{"hang": hang, "ok": ok}, 300*time.Millisecond)
	x := r.waitStatus("slow", "FAILED")
	<-cancelled
	if x.StatusDetails["reason"] != "step timeout of 2 minutes exceeded; the operation was cancelled" {
		t.Errorf("reason %q", x.StatusDetails["reason"])
	}
	r.waitStatus("next", "SUCCEEDED")
}

// The service's step timer: a kit that goes silent leaves the execution
// TIMED_OUT, never IN_PROGRESS forever (the emulator's side of the rule).
func TestServiceTimesOutASilentKit(t *testing.T) {
	r := newRig(t, 200*time.Millisecond)
	started := make(chan struct{})
	block := opFunc(func(ctx context.Context, e *Execution) Result {
		close(started)
		<-ctx.Done()
		return Result{Status: Failed}
	})
	r.queue("silent", map[string]any{"operation": "block", "step_timeout_minutes": 1})
	k := r.startKit(map[string]Operation{"block": block}, time.Hour) // the kit's own timer never fires
	<-started
	k.stop()
	r.waitStatus("silent", "TIMED_OUT")
}

// A version conflict (another writer updated the execution) is resolved
// by getting the execution again and retrying with its version.
func TestVersionConflictRetried(t *testing.T) {
	r := newRig(t, 0)
	op := opFunc(func(ctx context.Context, e *Execution) Result {
		if err := r.emu.Touch(thing, e.JobID); err != nil {
			t.Error(err)
		}
		if err := e.Progress(ctx, map[string]string{"phase": "after conflict"}); err != nil {
			return Result{Status: Failed, Details: map[string]string{"reason": err.Error()}}
		}
		if err := r.emu.Touch(thing, e.JobID); err != nil {
			t.Error(err)
		}
		return Result{Status: Succeeded}
	})
	r.queue("conflict", map[string]any{"operation": "op"})
	r.startKit(map[string]Operation{"op": op}, 0)
	r.waitStatus("conflict", "SUCCEEDED")
	saw := false
	for _, c := range r.emu.History(thing, "conflict") {
		saw = saw || c.StatusDetails["phase"] == "after conflict"
	}
	if !saw {
		t.Errorf("the progress after the conflict never reached the service: %+v", r.emu.History(thing, "conflict"))
	}
}

// A kit stopped during a job (as by kill -9: nothing reported) resumes it
// on its next start with Resumed set and the details it left; after
// MaxStarts starts it is FAILED instead of resumed again.
func TestInterruptedJobResumedThenFailedAfterMaxStarts(t *testing.T) {
	r := newRig(t, 0)
	r.queue("interrupted", map[string]any{"operation": "op"})
	for start := 1; start <= MaxStarts; start++ {
		var rec recorder
		entered := make(chan struct{})
		op := opFunc(func(ctx context.Context, e *Execution) Result {
			rec.add(e)
			_ = e.Progress(ctx, map[string]string{"phase": "working"})
			close(entered)
			<-ctx.Done()
			return Result{Status: Failed}
		})
		k := r.startKit(map[string]Operation{"op": op}, 0)
		<-entered
		k.stop()
		seen := rec.all()
		if len(seen) != 1 {
			t.Fatalf("start %d: %d runs", start, len(seen))
		}
		if seen[0].Resumed != (start > 1) {
			t.Errorf("start %d: Resumed %v", start, seen[0].Resumed)
		}
		if start > 1 && seen[0].StatusDetails["phase"] != "working" {
			t.Errorf("start %d: details %v", start, seen[0].StatusDetails)
		}
		if got := r.emu.Status(thing, "interrupted"); got != "IN_PROGRESS" {
			t.Fatalf("start %d: %s", start, got)
		}
	}
	ran := make(chan struct{}, 1)
	r.startKit(map[string]Operation{"op": opFunc(func(context.Context, *Execution) Result {
		ran <- struct{}{}
		return Result{Status: Succeeded}
	})}, 0)
	x := r.waitStatus("interrupted", "FAILED")
	if !strings.Contains(x.StatusDetails["reason"], "the agent stopped 5 times while this job was in progress") {
		t.Errorf("reason %q", x.StatusDetails["reason"])
	}
	select {
	case <-ran:
		t.Error("the operation ran a sixth time")
	default:
	}
}

// An operation that arranges a restart (Status "") leaves the execution
// IN_PROGRESS; this process does not run it again, nor anything queued
// behind it; the next process resumes it.
func TestRestartParksExecution(t *testing.T) {
	r := newRig(t, 0)
	var runs atomic.Int32
	restart := opFunc(func(ctx context.Context, e *Execution) Result {
		runs.Add(1)
		if e.Resumed && e.StatusDetails["phase"] == "restarting" {
			return Result{Status: Succeeded, Details: map[string]string{"restarted": "true"}}
		}
		if err := e.Progress(ctx, map[string]string{"phase": "restarting"}); err != nil {
			return Result{Status: Failed, Details: map[string]string{"reason": err.Error()}}
		}
		return Result{}
	})
	r.queue("restart", map[string]any{"operation": "restart"})
	k := r.startKit(map[string]Operation{"restart": restart}, 0)
	testkit.WaitFor(t, 30*time.Second, "restarting reported", func() bool {
		x := r.emu.Execution(thing, "restart")
		return x != nil && x.StatusDetails["phase"] == "restarting"
	})
	// News (another job queued) makes the client look again: it must
	// leave the parked execution alone.
	r.queue("behind", map[string]any{"operation": "restart"})
	testkit.WaitFor(t, 30*time.Second, "the kit idle", func() bool { return k.c.Busy() == "" })
	if runs.Load() != 1 || r.emu.Status(thing, "restart") != "IN_PROGRESS" || r.emu.Status(thing, "behind") != "QUEUED" {
		t.Fatalf("runs %d, restart %s, behind %s", runs.Load(), r.emu.Status(thing, "restart"), r.emu.Status(thing, "behind"))
	}
	k.stop()
	r.startKit(map[string]Operation{"restart": restart}, 0)
	x := r.waitStatus("restart", "SUCCEEDED")
	if x.StatusDetails["restarted"] != "true" {
		t.Errorf("details %v", x.StatusDetails)
	}
}

// A hung operation never holds up delivery: readings appended while it
// runs are delivered.
func TestHungOperationDoesNotBlockDelivery(t *testing.T) {
	r := newRig(t, 0)
	entered := make(chan struct{})
	hang := opFunc(func(ctx context.Context, e *Execution) Result {
		close(entered)
		<-ctx.Done()
		return Result{Status: Failed}
	})
	r.queue("hang", map[string]any{"operation": "hang"})
	k := r.startKit(map[string]Operation{"hang": hang}, 0)
	<-entered
	for i := range 20 {
		rec, err := telemetry.MarshalRecord(nil, telemetry.Reading{Sensor: "s", Time: time.Now(), Values: map[string]float64{"x": float64(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.buf.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 30*time.Second, "20 readings delivered while the job hangs", func() bool {
		return k.buf.Stats().Pending == 0 && k.pub.Stats().Delivered >= 20
	})
	if k.c.Busy() != "hang" {
		t.Errorf("busy %q", k.c.Busy())
	}
}

// A result whose report is lost (no answer from the service) is reported
// again; the operation does not run twice in one process.
func TestLostReportSentAgainNotRerun(t *testing.T) {
	r := newRig(t, 0)
	var mu sync.Mutex
	dropped := 0
	r.emu.Drop(func(topic string, payload []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		if dropped == 0 && strings.HasSuffix(topic, "/once/update") && strings.Contains(string(payload), `"SUCCEEDED"`) {
			dropped++
			return true
		}
		return false
	})
	var runs atomic.Int32
	op := opFunc(func(context.Context, *Execution) Result {
		runs.Add(1)
		return Result{Status: Succeeded, Details: map[string]string{"n": "1"}}
	})
	r.queue("once", map[string]any{"operation": "op"})
	r.reqTimeout = time.Second // the lost answer is waited for this long
	r.startKit(map[string]Operation{"op": op}, 0)
	r.waitStatus("once", "SUCCEEDED")
	mu.Lock()
	defer mu.Unlock()
	if dropped != 1 || runs.Load() != 1 {
		t.Fatalf("dropped %d, runs %d", dropped, runs.Load())
	}
}

// Details beyond AWS's limits are fitted, not refused: the emulator,
// which refuses what AWS refuses, takes them.
func TestDetailsFittedToAWSLimits(t *testing.T) {
	r := newRig(t, 0)
	op := opFunc(func(ctx context.Context, e *Execution) Result {
		d := map[string]string{"sensors.sim.interval": "bad key", "empty": "", "ctl": "a\nb\tc", "long": strings.Repeat("é", 3000)}
		for i := range 12 {
			d[fmt.Sprintf("z%02d", i)] = "v"
		}
		if err := e.Progress(ctx, d); err != nil {
			return Result{Status: Failed, Details: map[string]string{"reason": err.Error()}}
		}
		return Result{Status: Succeeded, Details: d}
	})
	r.queue("wide", map[string]any{"operation": "op"})
	r.startKit(map[string]Operation{"op": op}, 0)
	x := r.waitStatus("wide", "SUCCEEDED")
	if len(x.StatusDetails) != 10 || x.StatusDetails["details_left_out"] == "" {
		t.Fatalf("%d details: %v", len(x.StatusDetails), x.StatusDetails)
	}
	for k, v := range x.StatusDetails {
		if n := len([]rune(v)); n == 0 || n > 1024 || strings.ContainsAny(v, "\n\t") {
			t.Errorf("%s: value of %d characters: %q", k, n, v)
		}
	}
	if x.StatusDetails["ctl"] != "a b c" || x.StatusDetails["empty"] != "-" || x.StatusDetails["sensors_sim_interval"] != "bad key" ||
		len([]rune(x.StatusDetails["long"])) != 1024 || x.StatusDetails["details_left_out"] != "7" {
		t.Errorf("details %v", x.StatusDetails)
	}
}
