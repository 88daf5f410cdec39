package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// maxRetentionJSON bounds the opaque retention view stored with a summary:
// it is a handful of fields, so anything larger is not what head office
// sends.
const maxRetentionJSON = 4096

// validSummaryFigures checks the head-office figures of a summary and
// compacts its retention view (so equal views are stored as equal bytes).
func validSummaryFigures(s *MemberSummary) error {
	if s.Spend12m < 0 || s.Visits12m < 0 {
		return fmt.Errorf("ledger summary %q: negative spend or visits: %w", s.Member.ID, ErrInvalid)
	}
	if s.BirthdayYear < 0 || s.BirthdayYear > 9999 {
		return fmt.Errorf("ledger summary %q: birthday year %d: %w", s.Member.ID, s.BirthdayYear, ErrInvalid)
	}
	if s.FirstBonus != FirstBonusPending && s.FirstBonus != FirstBonusPaid {
		s.FirstBonus = "" // absent, or a value of a newer head office
	}
	if len(s.Retention) == 0 {
		s.Retention = nil
		return nil
	}
	d := bytes.TrimSpace(s.Retention)
	if len(d) > maxRetentionJSON || len(d) == 0 || d[0] != '{' || !json.Valid(d) {
		return fmt.Errorf("ledger summary %q: retention is not a JSON object of at most %d bytes: %w", s.Member.ID, maxRetentionJSON, ErrInvalid)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, d); err != nil {
		return fmt.Errorf("ledger summary %q: retention: %v: %w", s.Member.ID, err, ErrInvalid)
	}
	s.Retention = buf.Bytes()
	return nil
}

// MemberSummary returns the last summary of the member head office sent
// that this register applied, with the member's current profile; false
// when the member is unknown or head office has sent no summary of it.
// Balance is head office's figure as sent, not the overlaid balance
// (see Balance).
func (l *Ledger) MemberSummary(id string) (MemberSummary, bool, error) {
	var out MemberSummary
	var found bool
	err := l.view(func(tx *bolt.Tx) error {
		rec, err := readMember(tx, id)
		if errors.Is(err, ErrUnknownMember) {
			return nil
		}
		if err != nil {
			return err
		}
		if rec.Summary == nil {
			return nil
		}
		found = true
		s := rec.Summary
		m := rec.Member
		m.Aliases = slices.Clone(m.Aliases)
		out = MemberSummary{Member: m, Balance: s.Balance, Covered: s.Covered, Version: s.Version,
			Spend12m: s.Spend12m, Visits12m: s.Visits12m, Retention: slices.Clone(s.Retention),
			FirstBonus: s.FirstBonus, BirthdayYear: s.BirthdayYear}
		return nil
	})
	if err != nil {
		return MemberSummary{}, false, fmt.Errorf("ledger member summary %q: %w", id, err)
	}
	return out, found, nil
}
