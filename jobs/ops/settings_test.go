package ops

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSettingsFile(t *testing.T) {
	dir := t.TempDir()
	s := &Settings{Path: filepath.Join(dir, "jobs.json"), Device: "kit-1"}
	if d, err := s.Load(); d != nil || err != nil {
		t.Fatalf("missing file: %v %v", d, err)
	}
	if err := s.Merge(map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "5s"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Merge(map[string]any{"sensors": map[string]any{"a": map[string]any{"enabled": false}, "b": map[string]any{"interval": "1m"}}, "mqtt": map[string]any{"batch": map[string]any{"max_readings": 5.0}}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, l := range Leaves(d) {
		paths = append(paths, l.Path)
	}
	if want := []string{"mqtt.batch.max_readings", "sensors.a.enabled", "sensors.a.interval", "sensors.b.interval"}; !reflect.DeepEqual(paths, want) {
		t.Fatalf("paths %v", paths)
	}
	if l := Leaves(d)[2]; !reflect.DeepEqual(l.Doc, map[string]any{"sensors": map[string]any{"a": map[string]any{"interval": "5s"}}}) {
		t.Fatalf("leaf doc %v", l.Doc)
	}
	if st, _ := os.Stat(s.Path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	// Another kit's file, or damage, is set aside and reported.
	other := &Settings{Path: s.Path, Device: "kit-2"}
	if _, err := other.Load(); err == nil || !strings.Contains(err.Error(), "set aside") {
		t.Fatalf("another kit's file: %v", err)
	}
	if _, err := os.Stat(s.Path + ".bad"); err != nil {
		t.Fatal(err)
	}
}
