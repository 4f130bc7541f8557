package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// releaseTags are the build tags of the binaries kits run (Makefile,
// RELEASE_TAGS).
const releaseTags = "kitd_nodemo"

// The release binary links none of the demo (its broker, emulators and PKI
// helper): DESIGN.md says it must cost `kitd run` nothing, and a linked
// package's initialisation and pages are paid by every process of the
// binary.
func TestReleaseBuildLinksNoDemo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", releaseTags, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps gave %d packages: %q", len(deps), out)
	}
	demoOnly := []string{
		"github.com/mochi-mqtt/",
		"github.com/kitd-dev/kitd/internal/jobsemu",
		"github.com/kitd-dev/kitd/internal/provemu",
		"github.com/kitd-dev/kitd/internal/shadowemu",
		"github.com/kitd-dev/kitd/internal/pki",
	}
	for _, p := range deps {
		for _, d := range demoOnly {
			if strings.HasPrefix(p, d) {
				t.Errorf("the release build links %s", p)
			}
		}
	}
	// The default build (go run ./cmd/kitd demo from a clone) has it.
	out, err = exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/mochi-mqtt/server/v2\n") {
		t.Error("the default build does not link the demo broker: go run ./cmd/kitd demo would not work")
	}
}

// `kitd demo` in a release binary says why it is missing and how to run
// it, with exit 1; the rest of the CLI is there.
func TestReleaseBuildDemoSaysWhy(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kitd")
	build := exec.Command("go", "build", "-tags", releaseTags, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", releaseTags, err, out)
	}
	cmd := func(args ...string) *exec.Cmd {
		// make test-arm: the binary is built for arm and runs under qemu.
		if os.Getenv("KITD_TEST_EMULATED") != "" {
			qemu := os.Getenv("KITD_TEST_QEMU")
			if qemu == "" {
				t.Fatal("KITD_TEST_EMULATED is set but KITD_TEST_QEMU does not name the emulator")
			}
			return exec.Command(qemu, append([]string{bin}, args...)...)
		}
		return exec.Command(bin, args...)
	}
	out, err := cmd("demo", "--for", "1s").CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "not in this binary") || !strings.Contains(string(out), "go run ./cmd/kitd demo") {
		t.Fatalf("kitd demo in a release build: %v\n%s\nwant exit 1 naming go run ./cmd/kitd demo", err, out)
	}
	if out, err := cmd("version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "kitd ") {
		t.Fatalf("kitd version in a release build: %v\n%s", err, out)
	}
}
