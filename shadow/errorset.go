package shadow

import (
	"log/slog"
	"sort"
)

// errorSet is the reported errors entries: desired paths the agent
// refused, with why. What a desired document, which anyone with update
// rights writes, can put here is bounded (maxErrors entries, keys and
// messages trimmed) so the reported state stays small.
type errorSet map[string]string

// set records entries and says whether any changed. Past maxErrors new
// paths are left out; the caller logs the count.
func (e errorSet) set(errs map[string]string) bool {
	changed := false
	paths := make([]string, 0, len(errs))
	for p := range errs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		k, m := truncate(p, maxErrorKey), truncate(errs[p], maxErrorString)
		if old, ok := e[k]; ok && old == m {
			continue
		}
		if _, ok := e[k]; !ok && len(e) >= maxErrors {
			continue
		}
		e[k] = m
		changed = true
	}
	return changed
}

// clear deletes the entries whose path matches and says whether any went.
func (e errorSet) clear(match func(path string) bool) bool {
	changed := false
	for p := range e {
		if match(p) {
			delete(e, p)
			changed = true
		}
	}
	return changed
}

// trimmedErrors bounds what a desired document, which anyone with update
// rights writes, can put in the log.
func trimmedErrors(errs map[string]string) map[string]string {
	paths := make([]string, 0, len(errs))
	for p := range errs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := map[string]string{}
	for _, p := range paths[:min(len(paths), maxErrors)] {
		out[truncate(p, maxErrorKey)] = truncate(errs[p], maxErrorString)
	}
	return out
}

// errorsValue is bounded like the reported errors (a desired document
// is anyone's with update rights), saying how many it left out.
func errorsValue(errs map[string]string) slog.Value {
	kept := trimmedErrors(errs)
	attrs := make([]slog.Attr, 0, len(kept)+1)
	for p, m := range kept {
		attrs = append(attrs, slog.String(p, m))
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].Key < attrs[j].Key })
	if n := len(errs) - len(kept); n > 0 {
		attrs = append(attrs, slog.Int("not_shown", n))
	}
	return slog.GroupValue(attrs...)
}
