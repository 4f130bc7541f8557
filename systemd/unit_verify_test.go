//go:build systemtools

package systemd

import (
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// stagedUnit installs into a staging tree with the host's systemd units,
// so that systemd-analyze can load kitd.service as it would be installed.
func stagedUnit(t *testing.T) string {
	t.Helper()
	needTools(t, "systemd-analyze", "systemd-sysusers", "systemctl")
	stage := newStage(t)
	bin := filepath.Join(t.TempDir(), "kitd")
	write(t, bin, "#!/bin/sh\n", 0o755)
	installStaged(t, stage, bin)
	stageSystemd(t, stage)
	return stage
}

func TestUnitVerifies(t *testing.T) {
	stage := stagedUnit(t)
	out, err := runErr(".", "systemd-analyze", "verify", "--root="+stage, "kitd.service")
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	old := systemdVersion(t) < 254
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		if old && slices.ContainsFunc(newerKeys, func(k string) bool {
			return strings.Contains(line, "Unknown key '"+k+"' in section [Service], ignoring.") ||
				strings.Contains(line, "Unknown key name '"+k+"' in section 'Service', ignoring.")
		}) {
			continue
		}
		t.Errorf("systemd-analyze verify: %s", line)
	}
}

// systemdVersion is the number in the first line of systemctl --version.
func systemdVersion(t *testing.T) int {
	t.Helper()
	m := regexp.MustCompile(`^systemd (\d+)`).FindStringSubmatch(run(t, ".", "systemctl", "--version"))
	if m == nil {
		t.Fatal("systemctl --version: no version")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// The score goal is 2.0 ("OK"); docs/install.md states the measured one.
func TestUnitSecurityExposure(t *testing.T) {
	stage := stagedUnit(t)
	out := run(t, ".", "systemd-analyze", "security", "--offline=true", "--root="+stage, "--no-pager", "kitd.service")
	m := exposure.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	if score > 2.0 {
		t.Errorf("exposure %s %s, want 2.0 or lower:\n%s", m[1], m[2], out)
	}
	// The price of reading NTP's sync state, on purpose.
	if !strings.Contains(out, "adjtimex is allowed") {
		t.Errorf("adjtimex is not allowed: the clock could never tell it synced:\n%s", out)
	}
	doc := read(t, "../docs/install.md")
	if want := "exposure level " + m[1]; !strings.Contains(doc, want) {
		t.Errorf("docs/install.md does not state the measured %q", want)
	}
}
