package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

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
	if err := safefile.WriteAtomic(e.path, b, 0o640); err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	return nil
}
