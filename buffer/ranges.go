package buffer

import "sort"

// seqRange is an inclusive range of seqs.
type seqRange struct{ lo, hi uint64 }

func (r seqRange) len() uint64 { return r.hi - r.lo + 1 }

// rangeSet is a set of seqs kept as sorted, disjoint, non-adjacent ranges.
// Acks arrive in runs (a batch, the live tail, the backlog), so the set stays
// a handful of ranges: the contiguous prefix plus a few live-tail ranges.
type rangeSet struct{ r []seqRange }

// search returns the index of the first range with hi >= x.
func (s *rangeSet) search(x uint64) int {
	return sort.Search(len(s.r), func(i int) bool { return s.r[i].hi >= x })
}

// containsRange reports whether every seq in [lo, hi] is in the set; an
// empty range (hi < lo) is contained.
func (s *rangeSet) containsRange(lo, hi uint64) bool {
	if hi < lo {
		return true
	}
	i := s.search(lo)
	return i < len(s.r) && s.r[i].lo <= lo && s.r[i].hi >= hi
}

// count returns how many seqs of [lo, hi] are in the set.
func (s *rangeSet) count(lo, hi uint64) uint64 {
	if hi < lo {
		return 0
	}
	var n uint64
	for i := s.search(lo); i < len(s.r) && s.r[i].lo <= hi; i++ {
		a, b := max(s.r[i].lo, lo), min(s.r[i].hi, hi)
		n += b - a + 1
	}
	return n
}

// nextMissing returns the smallest seq >= x not in the set.
func (s *rangeSet) nextMissing(x uint64) uint64 {
	i := s.search(x)
	if i < len(s.r) && s.r[i].lo <= x {
		return s.r[i].hi + 1
	}
	return x
}

// add inserts [lo, hi] and returns how many seqs were not in the set before.
func (s *rangeSet) add(lo, hi uint64) uint64 {
	if hi < lo {
		return 0
	}
	added := hi - lo + 1 - s.count(lo, hi)
	if added == 0 {
		return 0
	}
	// i: first range that touches or follows [lo, hi] (hi+1 >= lo).
	i := sort.Search(len(s.r), func(k int) bool { return s.r[k].hi+1 >= lo })
	// j: first range entirely after [lo, hi] with a gap (lo > hi+1).
	j := sort.Search(len(s.r), func(k int) bool { return s.r[k].lo > hi+1 })
	m := seqRange{lo, hi}
	if i < j {
		m.lo = min(m.lo, s.r[i].lo)
		m.hi = max(m.hi, s.r[j-1].hi)
	}
	switch {
	case i == j:
		s.r = append(s.r, seqRange{})
		copy(s.r[i+1:], s.r[i:])
		s.r[i] = m
	default:
		s.r[i] = m
		s.r = append(s.r[:i+1], s.r[j:]...)
	}
	return added
}

// addSeqs inserts seqs in any order and returns how many were new.
func (s *rangeSet) addSeqs(seqs []uint64) uint64 {
	if len(seqs) == 0 {
		return 0
	}
	sorted := seqs
	if !sort.SliceIsSorted(seqs, func(i, j int) bool { return seqs[i] < seqs[j] }) {
		sorted = append([]uint64(nil), seqs...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	}
	var n uint64
	run := seqRange{sorted[0], sorted[0]}
	for _, x := range sorted[1:] {
		if x <= run.hi+1 {
			run.hi = max(run.hi, x)
			continue
		}
		n += s.add(run.lo, run.hi)
		run = seqRange{x, x}
	}
	return n + s.add(run.lo, run.hi)
}
