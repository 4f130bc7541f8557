// Command fakekitd stands in for `kitd run` in the update tests: it runs
// the real launcher, trial and kitd.update operation of package update
// around an agent reduced to what an update can observe (it starts, says
// it is running, connects or not). The tests build it with
//
//	-ldflags "-X main.version=1.1.0 -X main.behaviour=healthy"
//
// behaviour: healthy (confirms health at once), crash (panics at start:
// Go exits 2), hang (never gets as far as running; ignores SIGTERM),
// noconnect (runs, never healthy), late (healthy only once the launcher
// stops it at the deadline; healthy when not on trial).
//
// The job it runs comes from the environment (FAKE_JOB_ID, FAKE_JOB_DOC,
// FAKE_PUBKEY, FAKE_CA, FAKE_HEALTH); the file $STATE_DIRECTORY/job-seen-ID
// stands for the Jobs service's memory that the execution is IN_PROGRESS,
// so a later start is Resumed. Stdout lines "start VERSION" and "result
// VERSION JSON" are what the tests wait for. Deps.Restart exits 3 after
// Run returns, as the agent's clean stop with the restart status does.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kitd-dev/kitd/jobs"
	"github.com/kitd-dev/kitd/systemd"
	"github.com/kitd-dev/kitd/update"
)

var (
	version   = "0.0.0"
	behaviour = "healthy"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid(), "version", version)
	dir := update.Dir(os.Getenv)
	grace, _ := time.ParseDuration(os.Getenv("FAKE_STOP_GRACE"))
	if code, exit := update.Launch(update.LaunchOptions{Dir: dir, Args: os.Args, Environ: os.Environ(), Log: log, StopGrace: grace}); exit {
		os.Exit(code)
	}
	fmt.Println("start", version)
	switch behaviour {
	case "crash":
		panic("a bad release")
	case "hang":
		signal.Ignore(syscall.SIGTERM)
		for {
			time.Sleep(time.Hour)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	trial, err := update.OpenTrial(dir, version, os.Getenv, log)
	if err != nil {
		log.Error("trial", "err", err)
		os.Exit(1)
	}
	trial.Running()
	// As the agent does: READY=1 once running, STOPPING=1 on the way
	// out (stdout says when each was sent).
	n := systemd.NewNotifier(os.Getenv("NOTIFY_SOCKET"))
	if err := n.Ready(); err != nil {
		log.Error("notify", "err", err)
	}
	fmt.Println("ready", version)
	defer func() {
		_ = n.Stopping()
		fmt.Println("stopping", version)
	}()
	if behaviour == "late" && trial != nil {
		// Healthy just as the launcher's deadline stops it.
		<-ctx.Done()
		if err := trial.Confirm(); err != nil {
			log.Error("confirm", "err", err)
		}
		fmt.Println("confirmed late", version)
		return
	}
	if behaviour == "healthy" || behaviour == "late" {
		if err := trial.Confirm(); err != nil {
			log.Error("confirm", "err", err)
		}
	}
	if id := os.Getenv("FAKE_JOB_ID"); id != "" {
		restart := false
		health, _ := time.ParseDuration(os.Getenv("FAKE_HEALTH"))
		op, err := update.NewOperation(update.Deps{
			Config:  update.Config{PublicKeyFile: os.Getenv("FAKE_PUBKEY"), CAFile: os.Getenv("FAKE_CA"), HealthTimeout: health},
			Dir:     dir,
			Version: version,
			Restart: func() { restart = true },
			Trial:   trial,
			Log:     log,
		})
		if err != nil {
			log.Error("operation", "err", err)
			os.Exit(1)
		}
		seen := filepath.Join(os.Getenv("STATE_DIRECTORY"), "job-seen-"+id)
		_, serr := os.Stat(seen)
		resumed := serr == nil
		if err := os.WriteFile(seen, nil, 0o600); err != nil {
			log.Error("job-seen", "err", err)
		}
		res := op.Run(ctx, &jobs.Execution{JobID: id, Document: json.RawMessage(os.Getenv("FAKE_JOB_DOC")), Resumed: resumed})
		b, _ := json.Marshal(res)
		fmt.Println("result", version, string(b))
		if restart {
			stop()
			_ = n.Stopping()
			os.Exit(3)
		}
	}
	<-ctx.Done()
}
