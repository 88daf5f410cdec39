package ledger

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// Defaults for keeping confirmed events (Options.KeepConfirmedFor and
// KeepConfirmedBytes). docs/operations.md sizes them for a Pi's SD card.
const (
	DefaultKeepConfirmedFor   = 14 * 24 * time.Hour
	DefaultKeepConfirmedBytes = 64 << 20
)

// kKept is the number of bytes of outbox records kept after head office
// confirmed them (seq <= confirmed), so the byte bound costs no scan.
var kKept = []byte("kept_bytes")

// keepPolicy says how long confirmed outbox records stay: until they are
// older than For (wall time, decided only when both the clock now and the
// record's own were trusted) or the kept bytes exceed Bytes, whichever
// comes first; the oldest go first. For < 0 forgets them at once.
type keepPolicy struct {
	For   time.Duration
	Bytes int64
}

// prune forgets confirmed records (seq <= w) beyond the keep policy. It
// is called by Confirm inside its transaction, after the kept byte count
// includes the newly confirmed records.
func (x *wtx) prune(w uint64, kept int64) {
	p := x.l.keep
	b := x.tx.Bucket(bOutbox)
	c := b.Cursor()
	var keys [][]byte
	for k, v := c.First(); k != nil && keySeq(k) <= w; k, v = c.Next() {
		if p.For >= 0 && kept <= p.Bytes && !x.tooOld(v, p.For) {
			break
		}
		kept -= int64(len(v))
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		x.del(bOutbox, k)
	}
	x.put(bState, kKept, u64(uint64(max(kept, 0))))
}

// tooOld reports whether the record v is older than d by a trusted clock
// (now and when it was recorded). A record stamped while the clock was not
// trusted is kept until the byte bound takes it.
func (x *wtx) tooOld(v []byte, d time.Duration) bool {
	if !x.trusted {
		return false
	}
	wall, trusted, ok := outboxHead(v)
	if !ok || !trusted {
		return false
	}
	return x.now.Sub(wall) > d
}

// Kept reports the confirmed events the ledger still keeps, so a head
// office restored from an older backup can ask for them again: from..to
// (from > to when none) and their size in bytes.
func (l *Ledger) Kept() (from, to uint64, bytes int64, err error) {
	err = l.view(func(tx *bolt.Tx) error {
		state := tx.Bucket(bState)
		to = getU64(state, kConfirmed)
		from = to + 1
		if k, _ := tx.Bucket(bOutbox).Cursor().First(); k != nil && keySeq(k) <= to {
			from = keySeq(k)
		}
		bytes = int64(getU64(state, kKept))
		return nil
	})
	return from, to, bytes, err
}
