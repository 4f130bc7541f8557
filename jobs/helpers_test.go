package jobs

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/internal/jobsemu"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/publisher"
)

const thing = "kit-1"

// rig is a broker with the Jobs emulator, and kits connecting to it
// through the real publisher.
type rig struct {
	t      *testing.T
	broker *testkit.Broker
	emu    *jobsemu.Emulator
	// reqTimeout, when set, replaces the kits' request timeout.
	reqTimeout time.Duration
	// logs has every kit's jobs client log.
	logs testkit.LockedBuffer
}

func newRig(t *testing.T, emuMinute time.Duration) *rig {
	t.Helper()
	return newRigWithHook(t, emuMinute, nil)
}

// newRigWithHook is newRig with a broker hook deciding what clients may
// do (nil: everything).
func newRigWithHook(t *testing.T, emuMinute time.Duration, hook mqtt.Hook) *rig {
	t.Helper()
	b := testkit.StartBroker(t, hook)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emu, err := jobsemu.Start(ctx, b.URL, b.ClientTLS("jobs-service"), "jobs-service", jobsemu.Options{Minute: emuMinute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return &rig{t: t, broker: b, emu: emu}
}

// kit is one agent process as far as jobs go: a buffer, a publisher and a
// jobs client; stop ends it as a kill would (no result reported after).
type kit struct {
	c      *Client
	pub    *publisher.Publisher
	buf    *buffer.Buffer
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *rig) startKit(ops map[string]Operation, minute time.Duration) *kit {
	t := r.t
	t.Helper()
	bc := buffer.DefaultConfig()
	bc.Dir = filepath.Join(t.TempDir(), "buffer")
	bc.MaxBytes = 1 << 20
	bc.MinFreeBytes = 0
	bc.SegmentBytes = 64 << 10
	buf, err := buffer.Open(bc, buffer.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	pair := r.broker.Client(thing)
	pc := publisher.DefaultConfig()
	pc.Broker = r.broker.URL
	pc.CAFile, pc.CertFile, pc.KeyFile = r.broker.CA.CAFile, pair.CertFile, pair.KeyFile
	pc.MaxPublishRate = 0
	pc.ShutdownTimeout = 2 * time.Second
	pub, err := publisher.New(pc, publisher.Deps{Device: thing, Buffer: buf, Clock: clock.New(clock.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Enabled: true}, Deps{Thing: thing, Operations: ops, Log: slog.New(slog.NewTextHandler(&r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if minute > 0 {
		c.minute = minute
	}
	if r.reqTimeout > 0 {
		c.reqTimeout = r.reqTimeout
	}
	pub.OnConnect(func(ctx context.Context, s *publisher.Session) { c.OnConnect(ctx, s) })
	ctx, cancel := context.WithCancel(context.Background())
	k := &kit{c: c, pub: pub, buf: buf, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		_ = pub.Run(ctx)
	}()
	t.Cleanup(k.stop)
	return k
}

func (k *kit) stop() {
	k.cancel()
	<-k.done
	k.buf.Close()
}

func (r *rig) queue(jobID string, doc any) {
	r.t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.emu.Queue(thing, jobID, b); err != nil {
		r.t.Fatal(err)
	}
}

// waitStatus waits for jobID's execution to reach status and returns it.
func (r *rig) waitStatus(jobID, status string) *jobsemu.Change {
	r.t.Helper()
	testkit.WaitFor(r.t, 30*time.Second, jobID+" "+status, func() bool { return r.emu.Status(thing, jobID) == status })
	return r.emu.Execution(thing, jobID)
}

// statuses is the distinct sequence of statuses jobID went through.
func (r *rig) statuses(jobID string) []string {
	var out []string
	for _, c := range r.emu.History(thing, jobID) {
		if len(out) == 0 || out[len(out)-1] != c.Status {
			out = append(out, c.Status)
		}
	}
	return out
}

// opFunc adapts a function to Operation.
type opFunc func(ctx context.Context, e *Execution) Result

func (f opFunc) Run(ctx context.Context, e *Execution) Result { return f(ctx, e) }

// recorder remembers the executions an operation saw.
type recorder struct {
	mu   sync.Mutex
	seen []Execution
}

func (r *recorder) add(e *Execution) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, *e)
}

func (r *recorder) all() []Execution {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Execution(nil), r.seen...)
}
