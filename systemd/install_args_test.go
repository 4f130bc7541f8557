package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestInstallRefusesBadArguments(t *testing.T) {
	stage := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--binary is required"},
		{[]string{"--binary", "/nonexistent/kitd", "--root", stage}, "--binary /nonexistent/kitd: no such file"},
		{[]string{"--binary", "install.sh", "--root", "/nonexistent"}, "--root /nonexistent: no such directory"},
		{[]string{"--binary", "install.sh", "--config", "/nonexistent.yaml", "--root", stage}, "--config /nonexistent.yaml: no such file"},
		{[]string{"--bogus"}, "unknown argument '--bogus'"},
	} {
		out, err := runErr(".", "sh", append([]string{"install.sh"}, c.args...)...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("install.sh %q: %v, output %q; want an error with %q", c.args, err, out, c.want)
		}
	}
	if entries, _ := os.ReadDir(stage); len(entries) != 0 {
		t.Errorf("a refused install wrote %d entries into the stage", len(entries))
	}
}

// run runs a command and fails the test with its output on error.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(dir string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
