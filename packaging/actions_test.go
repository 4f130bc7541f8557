package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The scripts refuse actions they do not know, as Debian policy asks.
func TestMaintainerScriptsRejectUnknownActions(t *testing.T) {
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		out, err := runErr("sh", "scripts/"+s, "bogus")
		if err == nil || !strings.Contains(out, "unknown action 'bogus'") {
			t.Errorf("%s bogus: %v, %q", s, err, out)
		}
	}
}

func runErr(name string, args ...string) (string, error) { return runEnv(nil, name, args...) }

func runEnv(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
