package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `config check` with a user name and password file: the file is checked
// (key-file rules, named by its config path), its path printed, the
// password never.
func TestConfigCheckPasswordFile(t *testing.T) {
	const pw = "hunter2-kitd"
	pwFile := filepath.Join(t.TempDir(), "mqtt.password")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(validConfig(t), "mqtt:\n", "mqtt:\n  username: kit-001\n  password_file: "+pwFile+"\n", 1)
	cfg := writeConfig(t, body)
	r := kitd(t, nil, nil, "config", "check", "-c", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "password_file: "+pwFile) || !strings.Contains(r.stdout, "username: kit-001") {
		t.Fatalf("good config: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, pw) {
		t.Fatal("config check printed the password")
	}
	if err := os.Chmod(pwFile, 0o644); err != nil {
		t.Fatal(err)
	}
	r = kitd(t, nil, nil, "config", "check", "-c", cfg)
	if r.code != 2 || !strings.Contains(r.stderr, "mqtt.password_file: ") || !strings.Contains(r.stderr, "readable by others") {
		t.Fatalf("world-readable password file: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, pw) {
		t.Fatal("config check printed the password")
	}
}
