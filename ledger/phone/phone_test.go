package phone_test

import (
	"context"
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/phone"
)

func TestNormalize(t *testing.T) {
	il, err := phone.NewNormalizer("il")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    phone.Normalizer
		in   string
		want string // "" = not a phone number
	}{
		{il, "0501234567", "+972501234567"},
		{il, "050-123-4567", "+972501234567"},
		{il, "+972 50 123 4567", "+972501234567"},
		{il, "00972501234567", "+972501234567"},
		{il, "(050) 123 4567", "+972501234567"},
		{il, "+359 88 800 0007", "+359888000007"}, // another country, written internationally
		{il, "12", ""},
		{il, "+972 12", ""},
		{phone.Normalizer{}, "0501234567", ""}, // no region: a local number cannot be read
		{phone.Normalizer{}, "+972501234567", "+972501234567"},
	} {
		got, ok := tc.n.Normalize(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%q in %q: %q, %v; want %q", tc.in, tc.n.Region, got, ok, tc.want)
		}
	}
	if _, err := phone.NewNormalizer("XX"); !errors.Is(err, phone.ErrRegion) {
		t.Errorf("region XX: %v", err)
	}
}

// TestMembersFindAnySpelling: on a real ledger, a member enrolled with a
// phone in one spelling is found by any other, consent-by-phone style
// lookups resolve ids and aliases, cards are untouched, and an invalid
// phone changes nothing.
func TestMembersFindAnySpelling(t *testing.T) {
	l := ledgertest.Open(t, nil)
	n, _ := phone.NewNormalizer("IL")
	m := phone.Members{Ledger: l, N: n}
	ctx := context.Background()
	got, err := m.Enrol(ctx, ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"2990000000002", "050-123 4567", "+972 50 123 4567", "123-45678"},
		Contact: ledger.Contact{Phone: "050-123 4567"}})
	if err != nil {
		t.Fatal(err)
	}
	// the card and the Wiegand number stay as given; both phone spellings
	// become one E.164 alias
	if got.Contact.Phone != "+972501234567" || len(got.Aliases) != 3 || got.Aliases[0] != "2990000000002" || got.Aliases[1] != "+972501234567" || got.Aliases[2] != "123-45678" {
		t.Fatalf("enrolled %+v", got)
	}
	for _, q := range []string{"0501234567", "+972 50 123 4567", "+972501234567", "050-1234567", "2990000000002", "123-45678"} {
		if mem, err := m.LookupAlias(q); err != nil || mem.ID != "m1" {
			t.Errorf("LookupAlias(%q) = %v, %v", q, mem.ID, err)
		}
	}
	if _, err := m.LookupAlias("0509999999"); !errors.Is(err, ledger.ErrUnknownMember) {
		t.Errorf("another number: %v", err)
	}
	_, err = m.Enrol(ctx, ledger.Member{ID: "m2", Name: "Eli", Aliases: []string{"2990000000019"}, Contact: ledger.Contact{Phone: "050-12"}})
	if !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("invalid phone: %v", err)
	}
	if _, err := l.Member("m2"); !errors.Is(err, ledger.ErrUnknownMember) {
		t.Fatalf("a refused enrolment wrote the member: %v", err)
	}
}
