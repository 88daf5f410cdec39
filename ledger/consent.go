package ledger

// Supersedes reports whether the consent change c replaces cur as the
// member's choice, whatever order the two arrived in. Changes made at
// different registers reach head office in any order (one register was
// offline for an hour), so arrival says nothing; their times order them,
// and where a time cannot be trusted the member's privacy wins:
//
//   - nothing recorded yet (cur is the zero Consent): c replaces it;
//   - both clocks trusted: the later time wins; at the same time c (the
//     later one of the same register's stream, the only way two changes
//     share a time to the nanosecond);
//   - otherwise a withdrawal replaces anything, and a grant replaces
//     only a grant: a withdrawal is never undone by a grant that cannot
//     be shown to be later than it.
//
// Head office keeps every change in the history and the winner as the
// member's consent (sync/hq/hqstore); a withdrawal stamped by an untrusted
// clock counts there from when head office applied it, the latest it can
// have been made, so the member's next grant on a trusted clock after
// that undoes it.
func (c Consent) Supersedes(cur Consent) bool {
	switch {
	case cur == (Consent{}):
		return true
	case c.ClockTrusted && cur.ClockTrusted:
		return !c.At.Before(cur.At)
	case !c.Given:
		return true
	default:
		return cur.Given
	}
}
