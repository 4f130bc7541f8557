//go:build systemtools

package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The tests in this file run the unit, install.sh and systemd's own tools
// against a staging tree (install.sh --root), never against this machine.
// They exec host tools, which also works when the test binary itself runs
// under qemu: only binaries built for another architecture need binfmt.

// needTools fails (never skips) when a tool is missing: make test
// installs them through scripts/deps.sh.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found: run scripts/deps.sh (make test does)", n)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("staging installs chown to the kitd user: run as root (CI and make test do)")
	}
}

// newStage returns a staging root that looks like a Raspberry Pi OS
// system as far as users go: root, and an i2c group that already exists
// with its own gid and members.
func newStage(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n", 0o644)
	write(t, filepath.Join(root, "etc/group"), "root:x:0:\ni2c:x:994:pi\npi:x:1000:\n", 0o644)
	return root
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// installStaged runs install.sh --root into stage with a stand-in binary
// (its content is all that matters here) and the repository's config.
func installStaged(t *testing.T, stage, binary string) string {
	t.Helper()
	return run(t, ".", "sh", "install.sh", "--binary", binary, "--root", stage)
}

// stageSystemd adds what systemd-analyze needs to load the unit from a
// staged tree: the host's units (for default dependencies such as
// sysinit.target) and the commands the unit runs.
func stageSystemd(t *testing.T, stage string) {
	t.Helper()
	for _, link := range []string{"bin", "lib", "sbin"} {
		if _, err := os.Lstat(filepath.Join(stage, link)); os.IsNotExist(err) {
			if err := os.Symlink("usr/"+link, filepath.Join(stage, link)); err != nil {
				t.Fatal(err)
			}
		}
	}
	units := "/usr/lib/systemd/system"
	if _, err := os.Stat(units); err != nil {
		units = "/lib/systemd/system"
	}
	entries, err := os.ReadDir(units)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(stage, "usr/lib/systemd/system")
	for _, e := range entries {
		if e.Name() == "kitd.service" {
			continue
		}
		src := filepath.Join(units, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dst, e.Name())); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if e.IsDir() {
			continue // .wants directories: not needed to load one unit
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dst, e.Name()), string(b), 0o644)
	}
	kill, err := exec.LookPath("kill")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(kill)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(stage, "usr/bin/kill"), string(b), 0o755)
}
