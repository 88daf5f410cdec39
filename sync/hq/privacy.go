package hq

import (
	"strings"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// TillProfile is the part of a member's profile a store's registers need,
// and all head office sends them: id, aliases (to recognise the card),
// display name, language, tier, home register and enrolment time (the
// "first return visit" prompt), whether the member consented to offers
// (the retention prompt) and the birthday as month and day only (the
// birthday bonus and greeting). Contact details, the consent history and
// notes and the birth year stay at head office, so a store's ledger and
// its /v1/export/members hold no more of the chain's personal data than
// the till uses.
func TillProfile(m ledger.Member) ledger.Member {
	out := ledger.Member{
		ID: m.ID, Aliases: m.Aliases, Name: m.Name, Language: m.Language, Tier: m.Tier,
		HomeRegister: m.HomeRegister, EnrolledAt: m.EnrolledAt, EnrolledTrusted: m.EnrolledTrusted,
		Consent: ledger.Consent{Given: m.Consent.Given},
	}
	if b := m.Birthday; len(b) == 10 && !strings.HasPrefix(b, "--") {
		out.Birthday = "--" + b[5:] // YYYY-MM-DD -> --MM-DD
	} else {
		out.Birthday = b
	}
	return out
}
