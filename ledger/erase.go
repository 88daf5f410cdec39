package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Member erasure on the register (docs/hq.md "Erasing a member"): head
// office's signed erase document names the member and the erasure's
// number; EraseMember carries it out once and confirms it to head office.

// erasedKey marks in bMeta that erasure n of a member was carried out.
func erasedKey(id string) []byte { return []byte("erased\x00" + id) }

// errReaders: free pages were not zeroed because read transactions that
// may still see them were open.
var errReaders = errors.New("ledger: read transactions open, free pages not zeroed yet")

// EraseMember carries out head office's erasure number n of member id:
// the profile is reduced to the bare id (name, contact, birthday,
// language, tier, consent and its history, the birthday-bonus marks and
// head office's retention view go), its aliases leave the alias index,
// and every profile event of the member in the outbox (waiting or kept
// after confirmation) is redacted with RedactRecord. Sales, point events,
// expiry lots, the purchase index and the balance stay under the bare id,
// so Check still holds. An OutErased record confirms the erasure to head
// office. A member this register never held is confirmed too (there is
// nothing to remove). It reports whether it did anything: an erasure
// already carried out changes nothing and returns false. Afterwards the
// file's free pages, which still hold the old bytes, are zeroed
// (ScrubFreePages).
func (l *Ledger) EraseMember(ctx context.Context, id string, n uint64) (bool, error) {
	if err := validID("member id", id); err != nil {
		return false, fmt.Errorf("ledger erase: %w", err)
	}
	if n == 0 {
		return false, fmt.Errorf("ledger erase %q: erasure number 0: %w", id, ErrInvalid)
	}
	res, err := l.submit(ctx, func(w *wtx) (any, error) {
		if w.get(bMeta, erasedKey(id)) != nil {
			return false, nil
		}
		var rec memberRec
		found, err := w.getMember(id, &rec)
		if err != nil {
			return nil, err
		}
		if found {
			for _, a := range rec.Member.Aliases {
				if owner := w.get(bAliases, []byte(a)); string(owner) == id {
					w.del(bAliases, []byte(a))
				}
			}
			rec.Member = Member{ID: id}
			rec.Fingerprint = "" // an enrolment under this id again is a conflict
			rec.BirthdayBonusGivenAt, rec.BirthdayYears = time.Time{}, nil
			if rec.Summary != nil {
				rec.Summary.Retention = nil
			}
			w.saveMember(&rec)
		}
		if err := w.redactOutbox(id); err != nil {
			return nil, err
		}
		w.emit(OutErased, func(uint64, string) any { return Erased{MemberID: id, Erasure: n} })
		w.put(bMeta, erasedKey(id), u64(n))
		return true, nil
	})
	if err != nil {
		return false, err
	}
	did := res.(bool)
	if did {
		if err := l.ScrubFreePages(ctx); err != nil {
			l.log.Warn("erasure: free pages not zeroed yet; they are at the next erasure or restart", "member", id, "err", err)
		}
	}
	return did, nil
}

// Erased reports whether an erasure of member id was carried out here,
// and its number.
func (l *Ledger) Erased(id string) (uint64, bool, error) {
	var n uint64
	var ok bool
	err := l.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(erasedKey(id)); len(v) == 8 {
			n, ok = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	return n, ok, err
}

// redactOutbox redacts the member's profile records in the outbox.
func (w *wtx) redactOutbox(id string) error {
	type kv struct{ k, v []byte }
	var put []kv
	err := w.tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
		if len(v) == 0 || v[0] == outboxRefMark || !(bytes.Contains(v, []byte(`"type":"`+OutMember+`"`)) || bytes.Contains(v, []byte(`"type":"`+OutConsent+`"`))) {
			return nil
		}
		r, err := decodeOutbox(nil, k, v)
		if err != nil {
			return fmt.Errorf("outbox %d: %w", keySeq(k), err)
		}
		if !IsProfileRecord(r.Type) || ProfileMember(r.Data) != id {
			return nil
		}
		if _, ok := RedactedMember(r.Data); ok {
			return nil
		}
		red := RedactRecord(r, id)
		data := red.Data
		put = append(put, kv{append([]byte(nil), k...), outboxValue(red, data)})
		return nil
	})
	if err != nil {
		return err
	}
	// Confirmed records kept count their bytes (kKept): redaction
	// changes their size.
	confirmed := getU64(w.tx.Bucket(bState), kConfirmed)
	kept := int64(getU64(w.tx.Bucket(bState), kKept))
	for _, p := range put {
		if keySeq(p.k) <= confirmed {
			kept += int64(len(p.v)) - int64(len(w.get(bOutbox, p.k)))
		}
		w.put(bOutbox, p.k, p.v)
	}
	if kept != int64(getU64(w.tx.Bucket(bState), kKept)) {
		w.put(bState, kKept, u64(uint64(max(kept, 0))))
	}
	return nil
}

// ScrubFreePages zeroes the pages of the ledger file that bbolt holds
// free: it keeps deleted and overwritten values there until a page is
// reused, so after an erasure the old bytes would still be in the file.
// It runs as a write transaction (no page is handed out meanwhile) and
// only when no read transaction that began earlier is open (such a reader
// may still read a page freed after it began); it waits a little for
// them and then gives up with an error (call it again later).
func (l *Ledger) ScrubFreePages(ctx context.Context) error {
	if l.readOnly {
		return ErrReadOnly
	}
	if l.closed.Load() {
		return ErrClosed
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("scrub: %w", err)
	}
	defer f.Close()
	for try := 0; ; try++ {
		err := l.exclusive(func() error {
			return l.scrubLog(l.db.Update(func(tx *bolt.Tx) error {
				if l.db.Stats().OpenTxN > 0 {
					return errReaders
				}
				ps := l.db.Info().PageSize
				zero := make([]byte, ps)
				pages := int(tx.Size() / int64(ps))
				for id := 2; id < pages; id++ {
					pi, err := tx.Page(id)
					if err != nil {
						return err
					}
					if pi == nil || pi.Type != "free" {
						continue
					}
					if _, err := f.WriteAt(zero, int64(id)*int64(ps)); err != nil {
						return err
					}
				}
				return f.Sync()
			}))
		})
		if !errors.Is(err, errReaders) || try >= 50 {
			if errors.Is(err, bolt.ErrDatabaseNotOpen) {
				return fmt.Errorf("scrub: %w", ErrClosed) // closed meanwhile
			}
			if err != nil {
				return fmt.Errorf("scrub: %w", err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
