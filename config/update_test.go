package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writePub(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateSection(t *testing.T) {
	yaml, dir, _ := fixture(t)
	cfg, err := load(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Update.PublicKeyFile != "" || cfg.Update.HealthTimeout != 5*time.Minute {
		t.Fatalf("defaults: %+v", cfg.Update)
	}

	// A relative key path resolves beside the config file.
	writePub(t, filepath.Join(dir, "update.pub"), 0o644)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(yaml+"update:\n  public_key_file: update.pub\n  health_timeout: 2m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = Check(path, []string{"KITD_UPDATE_HEALTH_TIMEOUT=90s"}, registry(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Update.PublicKeyFile != filepath.Join(dir, "update.pub") || cfg.Update.HealthTimeout != 90*time.Second {
		t.Fatalf("update section: %+v", cfg.Update)
	}

	// Bad values and files name their field.
	writePub(t, filepath.Join(dir, "writable.pub"), 0o666)
	if err := os.WriteFile(path, []byte(yaml+"update:\n  public_key_file: writable.pub\n  health_timeout: 0s\n  ca_file: nope.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Check(path, nil, registry(t))
	for _, want := range []string{"update.health_timeout:", "update.public_key_file:", "update.ca_file:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	// Without PartFiles the files are not read.
	if _, err := CheckParts(path, []string{"KITD_UPDATE_HEALTH_TIMEOUT=1m"}, registry(t), AllParts&^PartFiles); err != nil {
		t.Errorf("without files: %v", err)
	}
}
