package shadow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// stateFile is the state file's content: the desired settings last
// applied, in the desired document's own shape.
type stateFile struct {
	Device  string         `json:"device"`
	Shadow  string         `json:"shadow,omitempty"`
	Desired map[string]any `json:"desired"`
}

// ApplyPersisted loads the state file and applies its desired settings
// over the config file; call it at start, before connecting, so a reboot
// while offline keeps the remote configuration. A missing file is no
// settings. A corrupt file is logged, set aside as <state_file>.bad and
// the agent starts from its config file (nil is returned). Settings that
// no longer fit the config file (a sensor removed) are dropped and shown
// in reported errors; the others are applied. The error reports what
// could not be read or applied.
func (s *Shadow) ApplyPersisted() error {
	if !s.cfg.Enabled {
		return nil
	}
	st := s.state()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base.snapshot(st)
	doc, err := s.load()
	if errors.Is(err, ErrCorruptState) {
		s.log.Error("shadow: starting from the config file", "err", err)
		return nil
	}
	if err != nil || doc == nil {
		return err
	}
	return s.reapplyLocked(doc)
}

// Reapply sets a new base after the config file was re-read (SIGHUP) and
// applies the persisted desired settings over it again. The Target must
// already hold the new file's values.
func (s *Shadow) Reapply(sensors []string, batchMaxReadings int) error {
	if !s.cfg.Enabled {
		return nil
	}
	st := s.state()
	s.mu.Lock()
	s.base = newBase(sensors, batchMaxReadings)
	s.base.snapshot(st)
	doc := s.desiredDocLocked()
	err := s.reapplyLocked(doc)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return err
}

// reapplyLocked applies doc over a Target that holds the config file's
// values. Unlike a remote document it applies what it can: these settings
// were valid once, and one sensor removed from the file must not discard
// the rest.
func (s *Shadow) reapplyLocked(doc map[string]any) error {
	prev := s.applied
	p := parseDesired(doc, s.base.names)
	if len(p.errs) > 0 {
		s.log.Warn("shadow: persisted desired settings no longer fit the config file; dropped", "errors", errorsValue(p.errs))
		s.errs.set(p.errs)
	}
	s.applied = map[key]setting{}
	var errs []error
	for _, k := range sortedSettingKeys(p.sets) {
		v := p.sets[k]
		if err := s.call(k, v); err != nil {
			errs = append(errs, fmt.Errorf("shadow: %s: %w", k.path(), err))
			s.errs.set(map[string]string{k.path(): "not applied: " + err.Error()})
			continue
		}
		s.applied[k] = v
	}
	if len(s.applied) > 0 {
		s.log.Info("shadow: persisted desired settings applied", "settings", settingsValue(s.applied))
	}
	if !sameSettings(prev, s.applied) || len(p.errs) > 0 || len(errs) > 0 {
		if err := s.saveLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sortedSettingKeys(m map[key]setting) []key {
	ks := make([]key, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].path() < ks[j].path() })
	return ks
}

// desiredDocLocked is the applied settings as a desired document.
func (s *Shadow) desiredDocLocked() map[string]any {
	doc := map[string]any{}
	for k, v := range s.applied {
		if k == batchKey {
			doc["mqtt"] = map[string]any{"batch": map[string]any{"max_readings": v.raw}}
			continue
		}
		sensorsDoc, _ := doc["sensors"].(map[string]any)
		if sensorsDoc == nil {
			sensorsDoc = map[string]any{}
			doc["sensors"] = sensorsDoc
		}
		fields, _ := sensorsDoc[k.sensor].(map[string]any)
		if fields == nil {
			fields = map[string]any{}
			sensorsDoc[k.sensor] = fields
		}
		fields[k.field] = v.raw
	}
	return doc
}

func (s *Shadow) saveLocked() error {
	b, err := json.MarshalIndent(stateFile{Device: s.device, Shadow: s.cfg.Name, Desired: s.desiredDocLocked()}, "", "  ")
	if err != nil {
		return fmt.Errorf("shadow: %s: %w", s.cfg.StateFile, err)
	}
	if err := safefile.WriteAtomic(s.cfg.StateFile, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("shadow: %w", err)
	}
	return nil
}

// maxStateFileBytes bounds the state file: it holds desired settings
// that fit AWS's 8 KB shadow, so anything near this is damage.
const maxStateFileBytes = 1 << 20

// load reads the state file. A missing file is no desired state; a file
// that does not parse is renamed to .bad and reported as ErrCorruptState,
// so the agent starts from its config file and the evidence is kept.
func (s *Shadow) load() (map[string]any, error) {
	path := s.cfg.StateFile
	b, err := safefile.Read(path, safefile.Rules{Max: maxStateFileBytes})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var perr error
	switch {
	case errors.Is(err, safefile.ErrTooLarge):
		// Never this big when written by kitd: damage, set aside below.
		perr = err
	case err != nil:
		// A FIFO, a device, a directory: not ours to move.
		return nil, fmt.Errorf("shadow: state_file: %w", err)
	}
	var f stateFile
	if perr == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		perr = dec.Decode(&f)
		if perr == nil && dec.More() {
			perr = errors.New("trailing data")
		}
	}
	if perr == nil && f.Device == "" {
		perr = errors.New("no device")
	}
	if perr != nil {
		bad := path + ".bad"
		if rerr := os.Rename(path, bad); rerr != nil {
			return nil, fmt.Errorf("%w: %s: %v (and could not set it aside: %v)", ErrCorruptState, path, perr, rerr)
		}
		return nil, fmt.Errorf("%w: %s: %v (set aside as %s)", ErrCorruptState, path, perr, bad)
	}
	if f.Device != s.device || f.Shadow != s.cfg.Name {
		// Another kit's card, or another shadow: its settings are not ours.
		s.log.Warn("shadow: state file belongs to another device or shadow; ignored",
			"file", path, "device", f.Device, "shadow", f.Shadow)
		return nil, nil
	}
	return f.Desired, nil
}
