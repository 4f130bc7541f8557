package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// Names inside the update directory (see doc.go).
const (
	stateName    = "state.json"
	versionsName = "versions"
	downloadName = "download"
	binaryName   = "kitd"
)

// State is state.json: which installed version runs, and the trial or
// outcome of the last update. It is replaced whole by rename, so a reader
// sees the old file or the new one, never a mix.
type State struct {
	// Current is the installed version that runs instead of the packaged
	// binary; "" runs the packaged binary.
	Current string `json:"current,omitempty"`
	// Previous is the version Current replaced ("" = the packaged
	// binary); its files are kept for reference and removed at the next
	// successful update.
	Previous string `json:"previous,omitempty"`
	// Base identifies the packaged binary that installed versions were
	// run by. A different file there (the .deb was upgraded, downgraded
	// or reinstalled) wins over every installed version.
	Base *FileID `json:"base,omitempty"`
	// Trial is an installed version waiting for its one trial start.
	Trial *TrialRecord `json:"trial,omitempty"`
	// Outcome is how the last trial ended, for the job that asked for it.
	Outcome *Outcome `json:"outcome,omitempty"`
}

// TrialRecord is an update installed and not yet proven healthy.
type TrialRecord struct {
	JobID string `json:"job_id"`
	From  string `json:"from"`
	To    string `json:"to"`
	// HealthTimeout is the installing version's update.health_timeout:
	// the deadline does not depend on the new version reading its config.
	HealthTimeout Duration `json:"health_timeout"`
	// Attempts counts trial starts; it is saved before the start, so a
	// start that never comes back (crash, watchdog, power loss) is
	// counted. One start is all a trial gets.
	Attempts int       `json:"attempts"`
	Started  time.Time `json:"started,omitzero"`
}

// Outcome is the end of a trial.
type Outcome struct {
	JobID   string `json:"job_id"`
	Healthy bool   `json:"healthy"`
	From    string `json:"from"`
	To      string `json:"to"`
	// Reason says why the new version was rolled back.
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// FileID identifies a file by device, inode, size and modification time:
// dpkg installs a binary by rename, so a package install always changes
// the inode.
type FileID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
}

func fileID(path string) (*FileID, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	id := &FileID{Size: st.Size(), Mtime: st.ModTime().UnixNano()}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Ino = uint64(s.Dev), uint64(s.Ino) // narrower on some architectures
	}
	return id, nil
}

// Duration is a time.Duration written as a Go duration string.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// stateMax bounds state.json: it is a few hundred bytes.
const stateMax = 64 << 10

// LoadState reads dir's state.json; a missing file is the empty state
// (nothing installed: the packaged binary runs).
func LoadState(dir string) (State, error) {
	var s State
	path := filepath.Join(dir, stateName)
	b, err := safefile.Read(path, safefile.Rules{Max: stateMax})
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: %s: %v", ErrState, path, err)
	}
	for _, v := range []string{s.Current, s.Previous} {
		if v != "" {
			if _, err := parseVersion(v); err != nil {
				return State{}, fmt.Errorf("%w: %s: %v", ErrState, path, err)
			}
		}
	}
	if s.Trial != nil {
		if _, err := parseVersion(s.Trial.To); err != nil {
			return State{}, fmt.Errorf("%w: %s: trial: %v", ErrState, path, err)
		}
	}
	return s, nil
}

// saveState replaces state.json: temp file, fsync, rename, fsync of the
// directory, so a power loss leaves the old state or the new one.
func saveState(dir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteAtomic(filepath.Join(dir, stateName), append(b, '\n'), 0o640)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// binaryPath is where version v's binary lives.
func binaryPath(dir, v string) string {
	return filepath.Join(dir, versionsName, v, binaryName)
}

// prune removes installed versions other than keep; failures only cost
// space, so they are returned for the log, never acted on.
func prune(dir string, keep ...string) error {
	ents, err := os.ReadDir(filepath.Join(dir, versionsName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, e := range ents {
		kept := false
		for _, k := range keep {
			kept = kept || e.Name() == k
		}
		if !kept {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, versionsName, e.Name())))
		}
	}
	return errors.Join(errs...)
}
