package buffer

// ReadStats reads the stats of the buffer in cfg.Dir without taking its lock
// and without writing anything, so it works while an agent has the
// directory open (for `kitd buffer stats`). It sees the state as of the
// agent's last cursor save; a torn tail it meets is reported, not cut.
// cfg.SegmentBytes bounds the frames it accepts, as for Open.
func ReadStats(cfg Config) (Stats, error) {
	return readStats(cfg, OSFS{})
}

func readStats(cfg Config, fsys FS) (Stats, error) {
	b, err := newBuffer(cfg, []Option{WithFS(fsys)})
	if err != nil {
		return Stats{}, err
	}
	if err := b.recover(true); err != nil {
		return Stats{}, err
	}
	st := b.Stats()
	b.mu.Lock()
	b.closed = true
	for _, s := range b.segs {
		if s.rf != nil {
			s.rf.Close()
			s.rf = nil
		}
	}
	b.mu.Unlock()
	return st, nil
}
