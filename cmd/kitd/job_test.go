package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A --job file that is missing or not a JSON object is a usage error
// naming the file; the shipped templates are all accepted.
func TestDemoJobFile(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "job.txt")
	if err := os.WriteFile(notJSON, []byte("operation: kitd.read-now\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "missing.json"), notJSON} {
		r := kitd(t, nil, nil, "demo", "--for", "1s", "--job", f)
		if r.code != 2 || !strings.Contains(r.stderr, "--job "+f) {
			t.Errorf("--job %s: exit %d, stderr %q", f, r.code, r.stderr)
		}
	}
	templates, err := filepath.Glob("../../deploy/aws/jobs/*.json")
	if err != nil || len(templates) < 4 {
		t.Fatalf("templates: %v %v", templates, err)
	}
	for _, f := range templates {
		if _, err := readJobFile(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
