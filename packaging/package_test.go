//go:build systemtools

package packaging

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

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
		t.Fatal("dpkg --root and the maintainer scripts chown to the kitd user: run as root (CI and make test do)")
	}
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runEnv(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.deb != "" {
		os.RemoveAll(filepath.Dir(built.deb))
	}
	os.Exit(code)
}

func TestMaintainerScriptsAreClean(t *testing.T) {
	needTools(t, "shellcheck")
	run(t, nil, "shellcheck", "-s", "sh", "scripts/postinst", "scripts/prerm", "scripts/postrm")
}

// hostEnv builds for this machine even when the test binary runs under
// qemu for GOARCH=arm: the package test is about the package, and the
// tools it runs (nfpm, dpkg) are this machine's.
func hostEnv(t *testing.T) []string {
	t.Helper()
	goos := strings.TrimSpace(run(t, nil, "go", "env", "GOHOSTOS"))
	goarch := strings.TrimSpace(run(t, nil, "go", "env", "GOHOSTARCH"))
	return []string{"GOOS=" + goos, "GOARCH=" + goarch, "GOARM=", "CGO_ENABLED=0"}
}

var built struct {
	once sync.Once
	deb  string
	err  string
}

// theDeb builds the amd64 .deb once for all tests in this package.
func theDeb(t *testing.T) string {
	t.Helper()
	needTools(t, "make", "go", "dpkg-deb", "dpkg", "systemd-sysusers", "systemctl")
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "kitd-deb")
		if err != nil {
			built.err = err.Error()
			return
		}
		ok := t.Run("build", func(t *testing.T) { built.deb = buildDeb(t, dir) })
		if !ok {
			built.err = "building the .deb failed"
		}
	})
	if built.err != "" {
		t.Fatal(built.err)
	}
	return built.deb
}

// buildDeb runs `make build deb` for amd64 into dir and returns the .deb.
func buildDeb(t *testing.T, dir string) string {
	t.Helper()
	env := hostEnv(t)
	if !slices.Contains(env, "GOARCH=amd64") {
		t.Fatalf("the package test builds the amd64 .deb and runs its binary; this machine is %q", env)
	}
	run(t, env, "make", "-C", "..", "--no-print-directory", "build", "deb",
		"BIN="+dir, "DIST="+dir, "DEB_ARCH=amd64", "KITD_BINARY="+filepath.Join(dir, "kitd"))
	debs, _ := filepath.Glob(filepath.Join(dir, "kitd_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one kitd_*_amd64.deb in %s, got %q", dir, debs)
	}
	return debs[0]
}

func TestDebPackage(t *testing.T) {
	deb := theDeb(t)

	info := run(t, nil, "dpkg-deb", "--info", deb)
	version := regexp.MustCompile(`(?m)^ Version: (\S+)$`).FindStringSubmatch(info)
	for _, want := range []string{
		"\n Package: kitd\n", "\n Architecture: amd64\n", "\n Depends: systemd\n",
		" conffiles ", " postinst ", " prerm ", " postrm ",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	if version == nil {
		t.Fatalf("no Version in:\n%s", info)
	}
	conffiles := run(t, nil, "sh", "-c", `dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles`, "sh", deb)
	if strings.TrimSpace(conffiles) != "/etc/kitd/config.yaml" {
		t.Errorf("conffiles = %q, want /etc/kitd/config.yaml", conffiles)
	}

	contents := map[string]string{} // path -> mode and owner
	for _, line := range strings.Split(strings.TrimSpace(run(t, nil, "dpkg-deb", "--contents", deb)), "\n") {
		f := strings.Fields(line)
		contents[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = f[0] + " " + f[1]
	}
	for path, want := range map[string]string{
		"/usr/bin/kitd":                         "-rwxr-xr-x root/root",
		"/usr/lib/systemd/system/kitd.service":  "-rw-r--r-- root/root",
		"/usr/lib/sysusers.d/kitd.conf":         "-rw-r--r-- root/root",
		"/usr/lib/udev/rules.d/60-kitd.rules":   "-rw-r--r-- root/root",
		"/etc/kitd":                             "drwxr-x--- root/root", // postinst adds the kitd group
		"/etc/kitd/config.yaml":                 "-rw-r--r-- root/root",
		"/var/lib/kitd":                         "drwxr-x--- root/root",
		"/usr/share/doc/kitd/install.md":        "-rw-r--r-- root/root",
		"/usr/share/doc/kitd/examples/kit.yaml": "-rw-r--r-- root/root",
		"/usr/share/doc/kitd/examples/aws.yaml": "-rw-r--r-- root/root",
	} {
		if got := contents[path]; got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	// Nothing else: no certificate or key may ever ship.
	for path := range contents {
		if strings.HasSuffix(path, ".pem") || strings.HasSuffix(path, ".key") || strings.HasSuffix(path, ".crt") {
			t.Errorf("the package ships key material: %s", path)
		}
	}

	x := t.TempDir()
	run(t, nil, "dpkg-deb", "-x", deb, x)
	bin := filepath.Join(x, "usr/bin/kitd")
	assertStatic(t, bin)
	if got, want := read(t, filepath.Join(x, "etc/kitd/config.yaml")), read(t, "../configs/kit.yaml"); got != want {
		t.Error("/etc/kitd/config.yaml is not configs/kit.yaml")
	}
	// The version is stamped: the Debian version is the binary's, with
	// Debian's ~ for a pre-release.
	out := run(t, nil, bin, "version")
	if want := strings.Replace(version[1], "~", "-", 1); !strings.Contains(out, want) {
		t.Errorf("kitd version = %q, want it to contain %s", out, want)
	}
}

// assertStatic checks that the binary is linked statically: no dynamic
// loader is asked for, so it runs on any distribution's libc or none.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", path)
		}
	}
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("%s is for %s, want x86-64", path, f.Machine)
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
