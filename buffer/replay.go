package buffer

// ReplayReader returns a Reader of every record with from <= seq < until
// that is still on disk, acknowledged or not: acknowledged records stay
// in their segment until every record in it is acknowledged and the
// segment is deleted, so a recent range can be delivered again (the
// kitd.resend job). Records dropped (buffer full), skipped as corrupt or
// in deleted segments are not returned: a seq of the range that Next
// never returns is gone. until 0 means no upper bound. It reads as any
// Reader does and changes nothing in the buffer: nothing is acknowledged
// or counted by reading.
func (b *Buffer) ReplayReader(from, until uint64) *Reader {
	r := b.Reader(from, until)
	r.replay = true
	return r
}
