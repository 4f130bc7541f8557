package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kitd-dev/kitd/agent"
	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/demo"
	"github.com/kitd-dev/kitd/logdedup"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/hw"
	"github.com/kitd-dev/kitd/sensors/iio"
	"github.com/kitd-dev/kitd/sensors/mhz19"
	"github.com/kitd-dev/kitd/sensors/pms5003"
	"github.com/kitd-dev/kitd/sensors/sds011"
	"github.com/kitd-dev/kitd/sensors/serial"
	"github.com/kitd-dev/kitd/sensors/sim"
	"github.com/kitd-dev/kitd/sensors/w1"
	"github.com/kitd-dev/kitd/systemd"
	"github.com/kitd-dev/kitd/telemetry"
	"github.com/kitd-dev/kitd/update"
)

// Exit codes: DESIGN.md's CLI contract.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
	// exitRestart ends `kitd run` after a clean stop a job asked for
	// (kitd.restart): EX_TEMPFAIL, a failure to systemd, whose
	// Restart=on-failure starts kitd again (only 2 is excluded, by
	// RestartPreventExitStatus), and a code no other path uses, so the
	// journal tells a requested restart from a crash.
	exitRestart = 75
)

// usageError marks errors that exit 2: bad flags, bad config.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// env is what every command gets from the process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
	logLevel       string
}

func (e *env) getenv(key string) string {
	for _, kv := range e.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, environ: environ}
	root := e.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	if errors.Is(err, agent.ErrRestart) {
		fmt.Fprintf(stderr, "kitd: stopped for a restart a job asked for (exit %d; systemd starts kitd again)\n", exitRestart)
		return exitRestart
	}
	if ec, ok := err.(exitCode); ok {
		return int(ec) // the status of the version that ran: said already
	}
	fmt.Fprintf(stderr, "kitd: %s\n", indentLines(err.Error()))
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitRuntime
}

// indentLines keeps multi-error messages (one line per field) readable.
func indentLines(s string) string {
	return strings.ReplaceAll(s, "\n", "\n  ")
}

func (e *env) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "kitd",
		Short:         "kitd reads a sensor kit's sensors and delivers every reading over mutual-TLS MQTT",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&e.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(e.runCmd(), e.demoCmd(), e.configCmd(), e.sensorsCmd(), e.bufferCmd(), e.versionCmd(), e.updateCmd())
	root.AddCommand(e.provisionCmd(), e.identityCmd())
	// Unknown commands and bad arguments are usage errors too; a group
	// named without a command prints its help.
	var all func(c *cobra.Command)
	all = func(c *cobra.Command) {
		if !c.Runnable() {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(c *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageError{fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())}
				}
				return c.Help()
			}
		}
		c.Args = wrapArgs(c.Args)
		for _, sub := range c.Commands() {
			all(sub)
		}
	}
	all(root)
	return root
}

func wrapArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	if v == nil {
		v = cobra.NoArgs
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func configFlag(c *cobra.Command, p *string) {
	c.Flags().StringVarP(p, "config", "c", config.DefaultFile, "config file")
}

// logger writes to stderr: text for a terminal, key=value without a time
// for the journal (journald stamps every line itself), with repeated lines
// folded.
func (e *env) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %q: want debug, info, warn or error", e.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if e.getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(logdedup.New(slog.NewTextHandler(e.stderr, opts), logdedup.Every)), nil
}

// registry is every driver kitd knows: simulated, I2C and 1-Wire
// hardware, Linux IIO and serial sensors.
func registry(host *hw.Host) (*sensors.Registry, error) {
	kinds := append([]sensors.Kind{sim.Kind()}, host.Kinds()...)
	kinds = append(kinds, iio.Kind(), mhz19.Kind(), pms5003.Kind(), sds011.Kind())
	return sensors.NewRegistry(kinds...)
}

// loadConfig reads a config file and validates the parts a command uses
// (the whole file's form always); every failure is a usage error (exit 2)
// naming the file or field.
func (e *env) loadConfig(path string, reg *sensors.Registry, parts config.Parts) (*config.Config, error) {
	cfg, err := config.CheckParts(path, e.environ, reg, parts)
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// kit is what `run` and `sensors read` share: a logger, the periph host
// (the caller closes it), every driver, and the config, validated as far
// as parts say.
type kit struct {
	log  *slog.Logger
	host *hw.Host
	reg  *sensors.Registry
	cfg  *config.Config
}

func (e *env) openKit(file string, parts config.Parts) (*kit, error) {
	log, err := e.logger()
	if err != nil {
		return nil, err
	}
	host := hw.NewHost(log)
	reg, err := registry(host)
	if err == nil {
		var cfg *config.Config
		if cfg, err = e.loadConfig(file, reg, parts); err == nil {
			return &kit{log: log, host: host, reg: reg, cfg: cfg}, nil
		}
	}
	host.Close()
	return nil, err
}

// runtimeDefaults tunes the Go runtime for `kitd run` where the environment
// does not say otherwise.
func (e *env) runtimeDefaults() {
	// A kit's live heap is well under 1 MiB, but Go's default
	// lets garbage grow to a 4 MiB heap before collecting, which
	// took the steady-state RSS over the 15 MB budget
	// (DESIGN.md; e2e BenchmarkSteadyState: VmHWM 15.4 -> 14.4 MB
	// with 10 sensors). Collect at a quarter of that (1 MiB) unless
	// the operator set GOGC: issue 10's 12 MB needs it (GOGC=50:
	// 11.8-12.0 MB; 25: 11.3 MB). With 10 sensors at 1 s that is a
	// collection every 15-20 s, at 100 ms every 2 s; no change in CPU
	// per reading could be measured.
	if e.getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	// Each reading is a chain of goroutine hand-offs (sensor loop,
	// driver call, buffer loop, drain loop, pump, paho's writer and
	// reader) with a few microseconds of work each. With a P per core,
	// a hand-off to an idle P wakes another thread (futex) that spins
	// in the scheduler and sleeps again: with 10 sensors at 100 ms,
	// scheduling was about half of kitd's CPU (perf: findRunnable,
	// wakep, sysmon; strace -c: 9 futex calls per reading, 1 with one
	// P), while the work fits one core many times over (a backlog
	// drains at 70 k readings/s). One P cut CPU per reading to
	// 0.65-0.8 of what it was (README, Measurements). A single-core Pi
	// Zero has one P anyway. GOMAXPROCS in the environment still wins.
	if e.getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

func (e *env) runCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "run",
		Short: "run the agent (the systemd service runs this)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			trial, err := e.launchUpdate()
			if err != nil {
				return err
			}
			e.runtimeDefaults()
			k, err := e.openKit(file, config.AllParts)
			if err != nil {
				return err
			}
			defer k.host.Close()
			log, reg, cfg := k.log, k.reg, k.cfg
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			// SIGHUP becomes a value: a non-blocking send on a buffered
			// channel, so reloads asked for during a reload coalesce.
			reload := make(chan struct{}, 1)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					select {
					case reload <- struct{}{}:
					default:
					}
				}
			}()
			a, err := agent.New(cfg, agent.Deps{
				ConfigFile:       file,
				Environ:          e.environ,
				Reloads:          reload,
				Registry:         reg,
				Clock:            clock.New(cfg.Clock),
				Log:              log,
				Notifier:         systemd.NewNotifier(e.getenv("NOTIFY_SOCKET")),
				WatchdogInterval: systemd.WatchdogInterval(e.getenv("WATCHDOG_USEC"), e.getenv("WATCHDOG_PID")),
				Version:          version,
				UpdateDir:        update.Dir(e.getenv),
				UpdateTrial:      trial,
			})
			if err != nil {
				return usageError{err}
			}
			// Start-up's share of the binary's pages (pages.go).
			defer releaseStartupPagesNowAndLater(log)()
			return a.Run(ctx)
		},
	}
	configFlag(c, &file)
	return c
}

func (e *env) demoCmd() *cobra.Command {
	var (
		dur     time.Duration
		sets    []string
		jobFile string
	)
	var provision bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "run the whole pipeline on an embedded default: in-process broker, throwaway PKI, shadow emulator, simulated sensors",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dur < 0 {
				return usageError{errors.New("--for: must be positive")}
			}
			for _, s := range sets {
				if _, err := demo.ParseSet(s); err != nil {
					return usageError{fmt.Errorf("--set %w", err)}
				}
			}
			job, err := readJobFile(jobFile)
			if err != nil {
				return usageError{fmt.Errorf("--job %w", err)}
			}
			if e.logLevel == "info" {
				e.logLevel = "warn" // the demo's own output is the point
			}
			log, err := e.logger()
			if err != nil {
				return err
			}
			reg, err := sensors.NewRegistry(sim.Kind())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return demo.Run(ctx, demo.Options{
				For: dur, Sets: sets, Input: e.stdin, Out: e.stdout, Err: e.stderr, Log: log,
				Registry: reg, Clock: clock.New(clock.Config{}), Version: version,
				Provision: provision, Job: job,
			})
		},
	}
	c.Flags().DurationVar(&dur, "for", 0, "end the demo after this long (e.g. 30s); default: until Ctrl-C")
	c.Flags().StringArrayVar(&sets, "set", nil, "change desired state after start, KEY=VALUE (e.g. sensors.sim.interval=5s); repeatable")
	c.Flags().BoolVar(&provision, "provision", false, "start the kit unprovisioned with a claim certificate and onboard it by fleet provisioning (emulated)")
	c.Flags().StringVar(&jobFile, "job", "", "send the job document in FILE (e.g. deploy/aws/jobs/read-now.json) to the kit and print each status change")
	return c
}

func (e *env) configCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "work with the config file"}
	var (
		file      string
		skipFiles bool
	)
	check := &cobra.Command{
		Use:   "check",
		Short: "validate the config file and print the effective config (never key material)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := registry(hw.NewHost(slog.New(slog.DiscardHandler)))
			if err != nil {
				return err
			}
			parts := config.AllParts
			if skipFiles {
				parts &^= config.PartFiles
			}
			cfg, err := e.loadConfig(file, reg, parts)
			if err != nil {
				return err
			}
			if strings.HasPrefix(cfg.MQTT.Broker, "tcp://") {
				fmt.Fprintln(e.stderr, "kitd: warning: mqtt.broker uses tcp:// — no TLS, for local tests only")
			}
			// A YAML comment: the output stays a config file.
			fmt.Fprintf(e.stdout, "# identity in effect: %s\n", identitySummary(cfg, skipFiles))
			eff := cfg.Effective(reg)
			return eff.Write(e.stdout)
		},
	}
	configFlag(check, &file)
	check.Flags().BoolVar(&skipFiles, "skip-files", false, "do not read the files the config names (certificates, keys, password and API key files, the update key, the provisioned identity): check everything else, e.g. a kit's config on another machine")
	c.AddCommand(check)
	return c
}

func (e *env) sensorsCmd() *cobra.Command {
	c := &cobra.Command{Use: "sensors", Short: "find and read sensors"}
	var w1Dir, iioDir, devDir string
	scan := &cobra.Command{
		Use:   "scan",
		Short: "list I2C devices, 1-Wire sensors, IIO devices and serial ports found on this board",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := e.logger()
			if err != nil {
				return err
			}
			host := hw.NewHost(log)
			defer host.Close()
			res, err := host.Scan(cmd.Context(), w1Dir)
			if err != nil {
				return err
			}
			if err := hw.WriteScan(e.stdout, res); err != nil {
				return err
			}
			devs, err := iio.List(iioDir)
			if err := iio.WriteList(e.stdout, iioDir, devs, err); err != nil {
				return err
			}
			ports, err := serial.List(devDir, "/sys")
			return serial.WriteList(e.stdout, devDir, ports, err)
		},
	}
	scan.Flags().StringVar(&w1Dir, "w1-dir", w1.DefaultDir, "kernel 1-Wire sysfs directory")
	scan.Flags().StringVar(&iioDir, "iio-dir", iio.DefaultDir, "kernel IIO sysfs directory")
	scan.Flags().StringVar(&devDir, "dev-dir", "/dev", "where to look for serial ports")
	var file string
	read := &cobra.Command{
		Use:   "read",
		Short: "read every configured sensor once and print a table",
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Reading sensors connects to nothing: a kit without its
			// certificates yet, or with a broken mqtt section, can
			// still try its wiring.
			k, err := e.openKit(file, config.PartSensors)
			if err != nil {
				return err
			}
			defer k.host.Close()
			rs := sensors.ReadOnce(cmd.Context(), k.reg, k.cfg.Sensors)
			if err := sensors.WriteTable(e.stdout, rs); err != nil {
				return err
			}
			failed := 0
			for _, r := range rs {
				if r.Err != nil {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d sensors failed to read", failed, len(rs))
			}
			return nil
		},
	}
	configFlag(read, &file)
	c.AddCommand(scan, read)
	return c
}

func (e *env) bufferCmd() *cobra.Command {
	c := &cobra.Command{Use: "buffer", Short: "inspect the disk buffer"}
	var file string
	stats := &cobra.Command{
		Use:   "stats",
		Short: "pending readings, bytes, oldest reading, dropped counts (works while the agent runs)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Only the buffer section matters here: a kit whose
			// certificates are broken still needs its buffer inspected.
			cfg, err := e.loadConfig(file, nil, config.PartBuffer)
			if err != nil {
				return err
			}
			st, err := buffer.ReadStats(cfg.Buffer)
			if errors.Is(err, buffer.ErrNoBuffer) {
				// Exit 1, not 0: there is nothing to report, and a
				// buffer.dir that differs from the agent's looks the same.
				return fmt.Errorf("%s: no buffer in %s: the agent has not run yet (kitd run creates it; if it has, buffer.dir is not its directory)", file, cfg.Buffer.Dir)
			}
			if err != nil {
				return err
			}
			return writeBufferStats(e.stdout, cfg.Buffer.Dir, st)
		},
	}
	configFlag(stats, &file)
	c.AddCommand(stats)
	return c
}

func writeBufferStats(w io.Writer, dir string, st buffer.Stats) error {
	oldest := "-"
	if st.Oldest != nil {
		switch v, err := telemetry.ParseRecord(st.Oldest); {
		case err != nil:
			oldest = fmt.Sprintf("seq %d (undecodable: %v)", st.OldestSeq, err)
		case v.IsGap():
			from, to, reason := v.GapRange()
			oldest = fmt.Sprintf("seq %d, %s, gap record for %d-%d (%s)", st.OldestSeq, telemetry.FormatTime(v.Time), from, to, reason)
		default:
			oldest = fmt.Sprintf("seq %d, %s, sensor %s (%s ago)", st.OldestSeq, telemetry.FormatTime(v.Time), v.Sensor(), time.Since(v.Time).Round(time.Second))
		}
	}
	ranges := make([]string, 0, len(st.DroppedRanges))
	for _, r := range st.DroppedRanges {
		ranges = append(ranges, fmt.Sprintf("%d-%d", r[0], r[1]))
	}
	reasons := make([]string, 0, len(st.Lost)+1)
	for _, r := range buffer.Reasons() {
		reasons = append(reasons, fmt.Sprintf("%s %d", r, st.Lost[r.String()]))
	}
	reasons = append(reasons, fmt.Sprintf("refused %d", st.Refused))
	_, err := fmt.Fprintf(w, "dir:            %s\nepoch:          %s\npending:        %d readings\nbytes:          %d\noldest:         %s\nnext seq:       %d\ndropped:        %d\nby reason:      %s\ndropped ranges: %s\n",
		dir, st.Epoch, st.Pending, st.Bytes, oldest, st.NextSeq, st.Dropped, strings.Join(reasons, ", "), strings.Join(ranges, ", "))
	return err
}

func (e *env) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print version, commit, GOOS/GOARCH",
		RunE: func(*cobra.Command, []string) error {
			c := commit
			if c == "" {
				c = "unknown"
			}
			_, err := fmt.Fprintf(e.stdout, "kitd %s (commit %s) %s/%s %s\n", version, c, runtime.GOOS, runtime.GOARCH, runtime.Version())
			return err
		},
	}
}
