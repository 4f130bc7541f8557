package buffer

// Failpoints, named like bbolt's gofail points: each marks the gap between
// two steps that a crash may fall into. Tests install a hook with
// Deps.failpoint that stops the operation at the Nth hit of a name and then
// reopen the directory as a new process would.
const (
	fpAppendAfterWrite = "appendAfterWrite" // batch written, not yet published or fsynced
	fpAppendAfterSync  = "appendAfterSync"  // tail fsynced

	// Segment roll: fsync old tail, create, header, fsync, fsync dir.
	fpRollAfterSyncPrev = "rollAfterSyncPrev"
	fpRollAfterCreate   = "rollAfterCreate"
	fpRollAfterHeader   = "rollAfterHeader"
	fpRollAfterSync     = "rollAfterSync"
	fpRollAfterDirSync  = "rollAfterDirSync"

	// Segment delete: (cursor save when dropping), unlink, fsync dir.
	fpDeleteBeforeRemove = "deleteBeforeRemove"
	fpDeleteAfterRemove  = "deleteAfterRemove"
	fpDeleteAfterDirSync = "deleteAfterDirSync"

	// Slot saves append "BeforeWrite", "AfterWrite", "AfterSync".
	fpCursorSave = "cursor"
	fpSeqReserve = "seq"
)
