package ledger_test

import (
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// TestConsentSupersedes: the member's latest choice wins by time, not by
// arrival; a withdrawal is never undone by a grant that cannot be shown
// to be later (an untrusted time on either side).
func TestConsentSupersedes(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	give := func(h int, trusted bool) ledger.Consent {
		return ledger.Consent{Given: true, Channel: "in-store", At: at.Add(time.Duration(h) * time.Hour), ClockTrusted: trusted}
	}
	withdraw := func(h int, trusted bool) ledger.Consent {
		c := give(h, trusted)
		c.Given = false
		return c
	}
	cases := []struct {
		name    string
		cur, c  ledger.Consent
		replace bool
	}{
		{"first choice", ledger.Consent{}, give(0, false), true},
		{"first withdrawal", ledger.Consent{}, withdraw(0, false), true},
		{"later withdrawal over grant", give(1, true), withdraw(2, true), true},
		{"earlier grant after withdrawal", withdraw(2, true), give(1, true), false},
		{"later grant over withdrawal", withdraw(1, true), give(2, true), true},
		{"earlier withdrawal after grant", give(2, true), withdraw(1, true), false},
		{"same time: the later event", withdraw(1, true), give(1, true), true},
		{"older grant over newer grant", give(2, true), give(1, true), false},
		{"untrusted withdrawal over a later trusted grant", give(5, true), withdraw(-9000, false), true},
		{"trusted withdrawal over an untrusted grant", give(5, false), withdraw(1, true), true},
		{"untrusted grant after a withdrawal", withdraw(1, true), give(9000, false), false},
		{"trusted grant after an untrusted withdrawal", withdraw(1, false), give(9000, true), false},
		{"untrusted grant over a grant", give(1, true), give(0, false), true},
	}
	for _, tc := range cases {
		if got := tc.c.Supersedes(tc.cur); got != tc.replace {
			t.Errorf("%s: %+v supersedes %+v = %v, want %v", tc.name, tc.c, tc.cur, got, tc.replace)
		}
	}
}
