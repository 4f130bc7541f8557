package agent

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/internal/testkit"
)

// The lifecycle rules of doc.go, as the agent keeps them: the required
// deps are checked by New, a second Run is refused while the first goes
// on, and every log line names exactly one component (the agent hands its
// parts the plain logger, and each tags its own lines).
func TestLifecycleShape(t *testing.T) {
	path, cfg := offlineConfig(t, "200ms")
	if _, err := New(cfg, Deps{ConfigFile: path, Clock: clock.New(cfg.Clock)}); !errors.Is(err, ErrMissingDeps) {
		t.Fatalf("New without a registry: %v, want ErrMissingDeps", err)
	}
	if _, err := New(cfg, Deps{ConfigFile: path, Registry: testRegistry(t)}); !errors.Is(err, ErrMissingDeps) {
		t.Fatalf("New without a clock: %v, want ErrMissingDeps", err)
	}

	a, logs, stop := start(t, path, cfg, Deps{})
	testkit.WaitFor(t, 10*time.Second, "a reading", func() bool { return a.Stats().Pending > 0 })
	if err := a.Run(context.Background()); !errors.Is(err, ErrRunTwice) {
		t.Fatalf("second Run: %v, want ErrRunTwice", err)
	}
	stop()

	component := regexp.MustCompile(` component=(\S+)`)
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		m := component.FindAllStringSubmatch(line, -1)
		if len(m) != 1 {
			t.Errorf("%d component attributes, want 1: %s", len(m), line)
			continue
		}
		seen[m[0][1]] = true
	}
	// The buffer logs only what goes wrong; the others speak at start.
	for _, c := range []string{"agent", "sensors", "publisher"} {
		if !seen[c] {
			t.Errorf("no line from component=%s:\n%s", c, logs)
		}
	}
}
