package ledger

import (
	"encoding/json"
	"fmt"
)

// Every operation that changes the ledger has a caller-chosen id, its
// idempotency key (see the package doc): the id is bound to the
// fingerprint of its first content. A retry with the same content returns
// the first result; the same id with other content is ErrConflict, never
// an overwrite.

// idempotent is a stored record of an operation with an idempotency key.
type idempotent interface{ contentFingerprint() string }

func (r *opRec) contentFingerprint() string     { return r.Fingerprint }
func (r *saleRec) contentFingerprint() string   { return r.Fingerprint }
func (r *memberRec) contentFingerprint() string { return r.Fingerprint }

// prior loads the record of operation kind/id stored under key into rec and
// reports whether there is one; one with another fingerprint than fp is
// ErrConflict.
func (w *wtx) prior(bucket, key []byte, rec idempotent, fp, kind, id string) (bool, error) {
	ok, err := w.getJSON(bucket, key, rec)
	if err != nil || !ok {
		return false, err
	}
	if rec.contentFingerprint() != fp {
		return false, fmt.Errorf("ledger %s %q: %w", kind, id, ErrConflict)
	}
	return true, nil
}

// opRec is the stored first result of an idempotent operation that keeps
// no record of its own (adjustments, refunds, voids).
type opRec struct {
	Fingerprint string          `json:"fingerprint"`
	Result      json.RawMessage `json:"result"`
}

func opKey(kind, id string) []byte { return []byte(kind + "\x00" + id) }

// once runs fn at most once for kind/id within the ledger's life: it
// stores fn's result with fp, and a retry gets the stored result back with
// replayed true.
func once[T any](w *wtx, kind, id, fp string, fn func() (T, error)) (r T, replayed bool, err error) {
	key := opKey(kind, id)
	var prev opRec
	if found, err := w.prior(bOps, key, &prev, fp, kind, id); err != nil {
		return r, false, err
	} else if found {
		if err := json.Unmarshal(prev.Result, &r); err != nil {
			return r, false, err
		}
		return r, true, nil
	}
	if r, err = fn(); err != nil {
		return r, false, err
	}
	w.putJSON(bOps, key, opRec{Fingerprint: fp, Result: mustJSON(r)})
	return r, false, nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
