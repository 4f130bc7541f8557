//go:build !kitd_nodemo

package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/agent"
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/configs"
	"github.com/kitd-dev/kitd/internal/pki"
	"github.com/kitd-dev/kitd/internal/shadowemu"
)

// Run runs the demo until ctx is done or opts.For has passed.
func Run(ctx context.Context, opts Options) error {
	if opts.For > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.For)
		defer cancel()
	}
	var sets []map[string]any
	for _, s := range opts.Sets {
		d, err := ParseSet(s)
		if err != nil {
			return fmt.Errorf("--set %w", err)
		}
		sets = append(sets, d)
	}
	out := &lockedWriter{w: opts.Out}
	errOut := opts.Err
	if errOut == nil {
		errOut = io.Discard
	}
	dir, err := os.MkdirTemp("", "kitd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	ca, err := pki.NewCA(filepath.Join(dir, "pki"), "kitd demo CA")
	if err != nil {
		return err
	}
	srvPair, err := ca.Server("broker", "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	kitPair, err := ca.Client(Device, time.Time{})
	if err != nil {
		return err
	}
	emuPair, err := ca.Client("shadow-service", time.Time{})
	if err != nil {
		return err
	}

	// The embedded broker's and the emulator's warnings at shutdown (the
	// kit going away) are noise in a demo; their errors still show.
	quiet := slog.New(levelFloor{opts.Log.Handler(), slog.LevelError})
	broker, err := startBroker(ca, srvPair, quiet)
	if err != nil {
		return err
	}
	defer broker.Close()
	addr := broker.Addr()
	if err := broker.Watch("kits/#", func(topic string, payload []byte) {
		printMessage(out, topic, payload)
	}); err != nil {
		return err
	}

	emuTLS, err := ca.ClientTLS(emuPair)
	if err != nil {
		return err
	}
	emu, err := shadowemu.Start(ctx, "tls://"+addr, emuTLS, "shadow-service", quiet)
	if err != nil {
		return fmt.Errorf("shadow emulator: %w", err)
	}
	defer emu.Close()
	// What the AWS status rule does: the Will shows on the shadow too.
	if err := emu.MirrorStatus("kits/+/status"); err != nil {
		return fmt.Errorf("shadow emulator: %w", err)
	}

	jobsEmu, err := startJobs(ctx, addr, ca, out, quiet)
	if err != nil {
		return err
	}
	defer jobsEmu.Close()

	cfg, err := config.Parse("configs/demo.yaml (embedded)", configs.Demo, nil)
	if err != nil {
		return err
	}
	cfg.MQTT.Broker = "tls://" + addr
	cfg.MQTT.CAFile, cfg.MQTT.CertFile, cfg.MQTT.KeyFile = ca.CAFile, kitPair.CertFile, kitPair.KeyFile
	cfg.Buffer.Dir = filepath.Join(dir, "buffer")
	cfg.Shadow.StateFile = filepath.Join(dir, "shadow.json")
	if opts.Provision {
		stopProv, err := startProvisioning(ctx, ca, "tls://"+addr, dir, cfg, out, quiet)
		if err != nil {
			return err
		}
		defer stopProv()
	}
	cfg.Jobs.StateFile = filepath.Join(dir, "jobs.json")
	// What config.Check does for `kitd run`, on the filled-in config.
	if err := cfg.Validate(opts.Registry); err != nil {
		return fmt.Errorf("configs/demo.yaml (embedded):\n%w", err)
	}
	newAgent := func() (*agent.Agent, error) {
		return agent.New(cfg, agent.Deps{
			Registry: opts.Registry, Clock: opts.Clock, Log: opts.Log, Version: opts.Version,
			StatusInterval: 5 * time.Second,
		})
	}
	a, err := newAgent()
	if err != nil {
		return err
	}
	var cur atomic.Pointer[agent.Agent] // a job may restart the kit
	cur.Store(a)
	fmt.Fprintf(out, "kitd demo: broker %s (mutual TLS, throwaway CA in %s), device %q, %d simulated sensors\n", addr, ca.Dir, cfg.Device.ID, len(cfg.Sensors))
	fmt.Fprintf(out, "type KEY=VALUE to change desired state, e.g. sensors.sim.interval=5s (KEY=null removes it: a rejected key blocks the others until then); Ctrl-C ends the demo\n")

	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- runKit(runCtx, &cur, newAgent, out) }()
	if opts.Job != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendJob(runCtx, jobsEmu, opts.Job, &cur, errOut)
		}()
	}

	apply := func(doc map[string]any) {
		if err := emu.UpdateDesired(Device, "", doc); err != nil {
			fmt.Fprintf(errOut, "desired: %v\n", err)
			return
		}
		b, _ := json.Marshal(doc)
		fmt.Fprintf(out, "desired  %s\n", b)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Wait for the kit's first report, so the change arrives as a delta
		// and not before the shadow exists.
		waitReported(runCtx, emu)
		for _, d := range sets {
			apply(d)
		}
	}()
	if opts.Input != nil {
		go readInput(runCtx, opts.Input, errOut, apply)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		watch(runCtx, out, &cur, emu)
	}()

	var err2 error
	select {
	case err2 = <-runErr:
	case <-ctx.Done():
		stop()
		err2 = <-runErr
	}
	stop()
	wg.Wait()
	// A Will or a late retained message after the agent stopped would
	// print after the summary.
	_ = broker.Unwatch("kits/#")
	if err2 != nil {
		return err2
	}
	s := cur.Load().Stats()
	fmt.Fprintf(out, "kitd demo: done: %d readings delivered, %d pending, %d dropped\n", s.Delivered, s.Pending, s.Dropped)
	return nil
}

// printMessage shows one telemetry or status message as the broker got it.
func printMessage(out io.Writer, topic string, payload []byte) {
	var m struct {
		Device   string          `json:"device"`
		Sensor   string          `json:"sensor"`
		Seq      uint64          `json:"seq"`
		TS       string          `json:"ts"`
		Clock    string          `json:"clock"`
		Values   map[string]any  `json:"values"`
		Readings json.RawMessage `json:"readings"`
		Gap      *struct {
			From, To uint64
			Reason   string
		} `json:"gap"`
	}
	if err := json.Unmarshal(payload, &m); err == nil && m.Gap != nil {
		fmt.Fprintf(out, "gap      seq=%-5d %s seqs %d-%d will never come: %s\n", m.Seq, m.TS, m.Gap.From, m.Gap.To, m.Gap.Reason)
		return
	}
	if strings.HasSuffix(topic, "/status") || json.Unmarshal(payload, &m) != nil || m.Sensor == "" {
		fmt.Fprintf(out, "message  %s %s\n", topic, payload)
		return
	}
	names := make([]string, 0, len(m.Values))
	for k := range m.Values {
		names = append(names, k)
	}
	sort.Strings(names)
	var vals []string
	for _, k := range names {
		vals = append(vals, fmt.Sprintf("%s=%v", k, m.Values[k]))
	}
	clock := ""
	if m.Clock != "" {
		clock = " clock=" + m.Clock
	}
	fmt.Fprintf(out, "reading  %-5s seq=%-5d %s %s%s\n", m.Sensor, m.Seq, m.TS, strings.Join(vals, " "), clock)
}

func readInput(ctx context.Context, in io.Reader, errOut io.Writer, apply func(map[string]any)) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if ctx.Err() != nil {
			return
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		doc, err := ParseSet(line)
		if err != nil {
			fmt.Fprintf(errOut, "input: %v\n", err)
			continue
		}
		apply(doc)
	}
}

func waitReported(ctx context.Context, emu *shadowemu.Emulator) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if doc, ok := emu.Document(Device, ""); ok && len(doc.State.Reported) > 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watch prints a status line every few seconds and the shadow document
// whenever the kit's reported state changes.
func watch(ctx context.Context, out io.Writer, cur *atomic.Pointer[agent.Agent], emu *shadowemu.Emulator) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	poll := time.NewTicker(500 * time.Millisecond)
	defer poll.Stop()
	var lastDoc string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := cur.Load().Stats()
			fmt.Fprintf(out, "status   connected=%t pending=%d delivered=%d dropped=%d\n", s.Connected, s.Pending, s.Delivered, s.Dropped)
		case <-poll.C:
			doc, ok := emu.Document(Device, "")
			if !ok {
				continue
			}
			b, _ := json.Marshal(map[string]any{"desired": doc.State.Desired, "reported": withoutVolatile(doc.State.Reported), "delta": doc.State.Delta})
			if s := string(b); s != lastDoc {
				lastDoc = s
				full, _ := json.Marshal(map[string]any{"desired": doc.State.Desired, "reported": doc.State.Reported, "delta": doc.State.Delta})
				fmt.Fprintf(out, "shadow   v%d %s\n", doc.Version, full)
			}
		}
	}
}

// withoutVolatile drops the fields that change with every report (reading
// times, counters), so the shadow is printed when its meaning changes.
func withoutVolatile(rep map[string]any) map[string]any {
	out := make(map[string]any, len(rep))
	for k, v := range rep {
		switch k {
		case "buffer":
			continue
		case "sensors":
			if m, ok := v.(map[string]any); ok {
				s := map[string]any{}
				for name, sv := range m {
					if sm, ok := sv.(map[string]any); ok {
						c := map[string]any{}
						for f, fv := range sm {
							if f != "last_reading_ts" {
								c[f] = fv
							}
						}
						s[name] = c
					}
				}
				v = s
			}
		}
		out[k] = v
	}
	return out
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// levelFloor drops records below its level.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lvl slog.Level) bool {
	return lvl >= l.min && l.Handler.Enabled(ctx, lvl)
}

func (l levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{l.Handler.WithAttrs(as), l.min}
}

func (l levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{l.Handler.WithGroup(name), l.min}
}
