//go:build !kitd_nodemo

package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/agent"
	"github.com/kitd-dev/kitd/internal/jobsemu"
	"github.com/kitd-dev/kitd/internal/pki"
)

// DemoJobID is the job id `kitd demo --job` gives the document.
const DemoJobID = "demo-job"

// startJobs starts the Jobs emulator on the demo broker, so the kit's jobs
// client has a service to talk to, and prints every status change of the
// demo's executions on out.
func startJobs(ctx context.Context, addr string, ca *pki.CA, out io.Writer, log *slog.Logger) (*jobsemu.Emulator, error) {
	pair, err := ca.Client("jobs-service", time.Time{})
	if err != nil {
		return nil, err
	}
	tlsCfg, err := ca.ClientTLS(pair)
	if err != nil {
		return nil, err
	}
	emu, err := jobsemu.Start(ctx, "tls://"+addr, tlsCfg, "jobs-service", jobsemu.Options{Log: log})
	if err != nil {
		return nil, fmt.Errorf("jobs emulator: %w", err)
	}
	last := map[string]string{}
	emu.OnChange(func(c jobsemu.Change) {
		if last[c.JobID] == c.Status {
			return // progress within a status: not a change of it
		}
		last[c.JobID] = c.Status
		fmt.Fprintf(out, "job      %s %s%s\n", c.JobID, c.Status, detailsText(c.StatusDetails))
	})
	return emu, nil
}

func detailsText(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, d[k])
	}
	return b.String()
}

// sendJob queues doc for the demo kit once it is connected, as
// `aws iot create-job` would.
func sendJob(ctx context.Context, emu *jobsemu.Emulator, doc []byte, cur *atomic.Pointer[agent.Agent], errOut io.Writer) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !cur.Load().Stats().Connected {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	if err := emu.Queue(Device, DemoJobID, doc); err != nil {
		fmt.Fprintf(errOut, "job: %v\n", err)
	}
}

// runKit runs the demo kit until ctx ends. When a job restarts it (Run
// returns agent.ErrRestart), it starts a new agent on the same config, as
// systemd does with kitd's exit code 75.
func runKit(ctx context.Context, cur *atomic.Pointer[agent.Agent], newAgent func() (*agent.Agent, error), out io.Writer) error {
	for {
		err := cur.Load().Run(ctx)
		if !errors.Is(err, agent.ErrRestart) || ctx.Err() != nil {
			if errors.Is(err, agent.ErrRestart) {
				return nil
			}
			return err
		}
		fmt.Fprintf(out, "kitd demo: the kit stopped for a restart (kitd run would exit 75); starting it again, as systemd would\n")
		a, err := newAgent()
		if err != nil {
			return err
		}
		cur.Store(a)
	}
}
