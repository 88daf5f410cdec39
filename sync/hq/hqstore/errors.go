package hqstore

import "errors"

// Sentinel errors. Callers test with errors.Is.
var (
	// ErrInvalid reports an event or argument that fails validation; the
	// error text names the event and the problem.
	ErrInvalid = errors.New("hqstore: invalid input")
	// ErrConflict reports an event whose (register, id) was already applied
	// with different content, or an alias owned by another member.
	ErrConflict = errors.New("hqstore: conflict")
	// ErrUnknownMember is returned by Member and Summary for an id never seen.
	ErrUnknownMember = errors.New("hqstore: unknown member")
	// ErrLocked reports that another process holds the store file.
	ErrLocked = errors.New("hqstore: file is locked by another process")
	// ErrSchemaTooNew reports a file written by a newer program.
	ErrSchemaTooNew = errors.New("hqstore: schema version is newer than this program")
	// ErrStaleConfig reports a config document whose version is not newer
	// than the one already recorded.
	ErrStaleConfig = errors.New("hqstore: config version not newer than published")
	// ErrStorage reports a commit that failed to write or sync the store
	// file. Nothing of it is acknowledged. After a failed sync the
	// operating system's copy of the file may hold pages that never
	// reached the disk, so the open store refuses every later write with
	// ErrStorage too; restart loyalty-hq (it reopens the file and the
	// registers resend from the last acknowledged watermark).
	ErrStorage = errors.New("hqstore: storage failed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("hqstore: closed")
)
