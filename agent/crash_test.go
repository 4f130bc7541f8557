package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/buffer"
	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/config"
	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/provision"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/sim"
)

// childEnv makes the test binary a kit (`kitd run` as the agent runs it)
// that is killed with SIGKILL at an onboarding failpoint, once it has
// readings in its buffer.
const childEnv = "KITD_AGENT_CHILD"

type childSpec struct {
	Path, Serial, Kill string
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

func runChild(spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	reg, err := sensors.NewRegistry(sim.Kind())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	cfg, err := config.Check(s.Path, nil, reg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	a, err := New(cfg, Deps{ConfigFile: s.Path, Registry: reg, Clock: clock.New(cfg.Clock),
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	a.ident.sources = provision.Sources{DeviceTreeSerial: func() (string, error) { return s.Serial, nil }}
	a.ident.retryMin, a.ident.retryMax = 100*time.Millisecond, 400*time.Millisecond
	a.ident.failpoint = func(name string) error {
		if name != s.Kill {
			return nil
		}
		for deadline := time.Now().Add(20 * time.Second); a.Stats().Pending < 5 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	if err := a.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// A kit killed with SIGKILL at each step of onboarding, with readings in
// its buffer: the next start finishes onboarding (one certificate, except
// in the one window no client can close) and delivers every reading taken
// before, as its thing.
func TestAgentKilledWhileOnboarding(t *testing.T) {
	for _, tc := range []struct {
		fp   string
		want int
	}{
		{provision.FPAfterKey, 1},
		{provision.FPAfterCertificate, 1},
		{provision.FPBeforeIdentity, 1}, // registered again with the same token (provision/doc.go)
		{provision.FPAfterIdentity, 1},
	} {
		t.Run(tc.fp, func(t *testing.T) {
			k := newFleetKit(t, 0)
			spec, _ := json.Marshal(childSpec{Path: k.path, Serial: kitSerial, Kill: tc.fp})
			cmd := selfCommand(t, "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("kit: want killed at %s, got %v\n%s", tc.fp, err, out)
			}
			st, err := buffer.ReadStats(k.cfg.Buffer)
			if err != nil {
				t.Fatal(err)
			}
			if st.Pending < 5 {
				t.Fatalf("%d readings in the buffer at the kill, want at least 5", st.Pending)
			}
			thing := "kit-" + kitSerial
			k.run(t)
			var missing uint64
			testkit.WaitFor(t, 60*time.Second, fmt.Sprintf("readings 1..%d taken before the kill, delivered as %s", st.Pending, thing), func() bool {
				got := map[uint64]bool{}
				for _, s := range k.seqs(thing) {
					got[s] = true
				}
				missing = 0
				for s := uint64(1); s <= uint64(st.Pending); s++ {
					if !got[s] {
						missing++
					}
				}
				return missing == 0
			})
			if n := k.emu.Issued(); n != tc.want {
				t.Errorf("%d certificates issued, want %d", n, tc.want)
			}
			id, err := provision.Load(k.cfg.Provisioning.Dir)
			if err != nil || id.ThingName != thing {
				t.Fatalf("identity %+v, %v", id, err)
			}
		})
	}
}

// selfCommand runs this test binary again; under qemu (make test-arm sets
// KITD_TEST_EMULATED and KITD_TEST_QEMU, binfmt is not registered) through
// the same emulator. A SIGKILL the child sends itself ends the emulator.
func selfCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if os.Getenv("KITD_TEST_EMULATED") == "" {
		return exec.Command(os.Args[0], args...)
	}
	qemu := os.Getenv("KITD_TEST_QEMU")
	if qemu == "" {
		t.Fatal("KITD_TEST_EMULATED is set but KITD_TEST_QEMU does not name the emulator")
	}
	return exec.Command(qemu, append([]string{os.Args[0]}, args...)...)
}
