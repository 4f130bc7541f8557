package ops

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"

	"github.com/kitd-dev/kitd/internal/safefile"
)

// maxSettingsBytes bounds the settings file: it holds a few desired
// settings, so anything near this is damage.
const maxSettingsBytes = 1 << 20

// Settings is the file (jobs.state_file) that keeps what kitd.set-config
// applied, so the settings survive a restart and a reload: the agent
// applies it over the config file (and over the shadow's settings) at
// start and after a reload. Its content is {"device": ..., "desired":
// {...}}, the desired settings merged from every set-config job in the
// shape of a desired document. Safe for concurrent use.
type Settings struct {
	Path, Device string
	mu           sync.Mutex
}

type settingsFile struct {
	Device  string         `json:"device"`
	Desired map[string]any `json:"desired"`
}

// Load reads the settings; a missing file is none. A file that does not
// parse is renamed to .bad (the evidence kept) and reported.
func (s *Settings) Load() (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked()
}

func (s *Settings) loadLocked() (map[string]any, error) {
	b, err := safefile.Read(s.Path, safefile.Rules{Max: maxSettingsBytes})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f settingsFile
	if err := json.Unmarshal(b, &f); err != nil || (f.Device != "" && f.Device != s.Device) {
		bad := s.Path + ".bad"
		if rerr := os.Rename(s.Path, bad); rerr != nil {
			return nil, fmt.Errorf("%s: not a settings file of %s, and not set aside: %v", s.Path, s.Device, rerr)
		}
		return nil, fmt.Errorf("%s: not a settings file of %s; set aside as %s", s.Path, s.Device, bad)
	}
	return f.Desired, nil
}

// Merge adds desired's settings to the file, a later value for a path
// replacing an earlier one.
func (s *Settings) Merge(desired map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.loadLocked()
	if err != nil {
		cur = nil // a damaged file was set aside: start afresh
	}
	return s.saveLocked(merge(cur, desired))
}

// Replace writes exactly desired (after settings that no longer fit were
// dropped).
func (s *Settings) Replace(desired map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked(desired)
}

func (s *Settings) saveLocked(desired map[string]any) error {
	b, err := json.MarshalIndent(settingsFile{Device: s.Device, Desired: desired}, "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteAtomic(s.Path, append(b, '\n'), 0o640)
}

// MergeDoc copies src's settings into dst (made if nil), objects merged,
// and returns dst.
func MergeDoc(dst, src map[string]any) map[string]any { return merge(dst, src) }

// merge copies src's leaves into dst (made if nil), objects merged.
func merge(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			dv, _ := dst[k].(map[string]any)
			dst[k] = merge(dv, sv)
			continue
		}
		dst[k] = v
	}
	return dst
}

// Leaf is one setting of a desired document: its path and a document
// holding it alone.
type Leaf struct {
	Path string
	Doc  map[string]any
}

// Leaves splits a desired document into its settings, sorted by path, so
// persisted settings are applied one by one: one that no longer fits (a
// sensor removed from the config file) must not take the others with it.
func Leaves(doc map[string]any) []Leaf {
	var out []Leaf
	var walk func(prefix string, m map[string]any, wrap func(any) map[string]any)
	walk = func(prefix string, m map[string]any, wrap func(any) map[string]any) {
		for k, v := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			w := func(x any) map[string]any { return wrap(map[string]any{k: x}) }
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(p, sub, w)
				continue
			}
			out = append(out, Leaf{Path: p, Doc: w(v)})
		}
	}
	walk("", doc, func(x any) map[string]any { return x.(map[string]any) })
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
