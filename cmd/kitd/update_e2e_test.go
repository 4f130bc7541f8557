package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/internal/testkit"
	"github.com/kitd-dev/kitd/update"
)

// buildVersion builds ./cmd/kitd stamped with v, for the host: under
// qemu the test binary is ARM, and the kitd it starts runs natively.
func buildVersion(t *testing.T, dir, v string) string {
	t.Helper()
	host := func(k string) string {
		b, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		return strings.TrimSpace(string(b))
	}
	bin := filepath.Join(dir, "kitd-"+v)
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version="+v, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+host("GOHOSTOS"), "GOARCH="+host("GOHOSTARCH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The real agent on trial: the packaged kitd 1.0.0 starts the installed
// 1.1.0, which proves health by connecting to the broker (Confirm from
// the publisher's OnConnect), or, with no broker to reach, is stopped at
// health_timeout and 1.0.0 runs the agent again.
func TestRunUpdateTrial(t *testing.T) {
	bins := t.TempDir()
	v100, v110 := buildVersion(t, bins, "1.0.0"), buildVersion(t, bins, "1.1.0")
	broker := testkit.StartBroker(t, nil)
	for _, c := range []struct {
		name   string
		broker string
		want   func(s update.State) bool
	}{
		{"healthy", broker.URL, func(s update.State) bool {
			return s.Current == "1.1.0" && s.Outcome != nil && s.Outcome.Healthy
		}},
		{"never connects", "tls://127.0.0.1:1", func(s update.State) bool {
			return s.Current == "" && s.Outcome != nil && !s.Outcome.Healthy && strings.Contains(s.Outcome.Reason, "never connected")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			state := t.TempDir()
			dir := filepath.Join(state, "update")
			inst := filepath.Join(dir, "versions", "1.1.0")
			if err := os.MkdirAll(inst, 0o750); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(v110)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(inst, "kitd"), b, 0o750); err != nil {
				t.Fatal(err)
			}
			// state.json as update/doc.go specifies it. 15s: enough for
			// a loaded machine to get the agent running (else "never
			// connects" would be reported as "hung").
			st := `{"trial":{"job_id":"job-1","from":"1.0.0","to":"1.1.0","health_timeout":"15s","attempts":0}}`
			if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(st), 0o640); err != nil {
				t.Fatal(err)
			}
			p := broker.Client("kit-001")
			cfg := writeConfig(t, fmt.Sprintf(`device: { id: kit-001 }
mqtt: { broker: %q, ca_file: %s, cert_file: %s, key_file: %s }
buffer: { dir: %s }
shadow: { enabled: false, state_file: %s }
sensors:
  - { name: sim, driver: sim, interval: 1s }
`, c.broker, broker.CA.CAFile, p.CertFile, p.KeyFile, filepath.Join(state, "buffer"), filepath.Join(state, "shadow.json")))
			var logs testkit.LockedBuffer
			cmd := exec.Command(v100, "run", "-c", cfg)
			cmd.Env = []string{"STATE_DIRECTORY=" + state, "PATH=" + os.Getenv("PATH")}
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
			})
			testkit.WaitFor(t, 2*time.Minute, "the trial's outcome in state.json", func() bool {
				s, err := update.LoadState(dir)
				return err == nil && c.want(s)
			})
			// Whichever version won runs the agent: 1.1.0 as the
			// launcher's child, or 1.0.0 itself after the rollback.
			want := map[string]string{"healthy": "version=1.1.0", "never connects": "version=1.0.0"}[c.name]
			testkit.WaitFor(t, time.Minute, "kitd running "+want, func() bool {
				for _, l := range strings.Split(logs.String(), "\n") {
					if strings.Contains(l, "kitd running") && strings.Contains(l, want) {
						return true
					}
				}
				return false
			})
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("kitd exited: %v\n%s", err, logs.String())
				}
			case <-time.After(time.Minute):
				t.Fatalf("kitd did not stop on SIGTERM\n%s", logs.String())
			}
			done <- nil // for the cleanup
			// No reading lost: none dropped, no seq left unused (each
			// version stopped cleanly); delivered by the healthy new
			// version, or kept for delivery when no broker answered.
			r := kitd(t, nil, nil, "buffer", "stats", "-c", cfg)
			delivered := strings.Contains(r.stdout, "pending:        0 readings")
			if r.code != 0 || !strings.Contains(r.stdout, "dropped:        0\n") || !strings.Contains(r.stdout, "unused 0,") || delivered != (c.name == "healthy") {
				t.Errorf("buffer after the trial: %+v", r)
			}
		})
	}
}
