package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// stateVersion is the state file's format.
const stateVersion = 1

// maxStateBytes bounds the state file: a few hundred bytes per rule.
const maxStateBytes = 1 << 20

type stateFile struct {
	Version int                   `json:"version"`
	Rules   map[string]*ruleState `json:"rules"`
}

// load reads the state file; a missing file is an empty state.
func load(path string) (map[string]*ruleState, error) {
	empty := map[string]*ruleState{}
	b, err := safefile.Read(path, safefile.Rules{Max: maxStateBytes})
	if errors.Is(err, fs.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		return empty, fmt.Errorf("%w: %w", ErrState, err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return empty, fmt.Errorf("%w: %s: %w", ErrState, path, err)
	}
	if f.Version != stateVersion {
		return empty, fmt.Errorf("%w: %s: version %d, want %d", ErrState, path, f.Version, stateVersion)
	}
	for name, st := range f.Rules {
		if st == nil {
			delete(f.Rules, name)
		}
	}
	if f.Rules == nil {
		return empty, nil
	}
	return f.Rules, nil
}

// saveLocked writes the rules that are firing or have sent anything.
func (e *Evaluator) saveLocked() error {
	if e.path == "" {
		return nil
	}
	f := stateFile{Version: stateVersion, Rules: map[string]*ruleState{}}
	for name, st := range e.state {
		if st.Firing || st.Seq > 0 {
			f.Rules[name] = st
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return writeAtomic(e.path, b)
}

// writeAtomic replaces path with data so that a crash at any point leaves
// either the old file or the new one: temporary file, fsync, rename,
// fsync of the directory (as shadow's state file is written).
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("alerts: %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("alerts: %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("alerts: %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("alerts: %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return fmt.Errorf("alerts: %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("alerts: %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("alerts: %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("alerts: %s: fsync directory: %w", dir, err)
	}
	return nil
}
