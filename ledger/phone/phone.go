package phone

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// ErrInvalid: the text looks like a phone number but is not a valid one
// for its country (or, without a country code, for the configured region).
// It wraps ledger.ErrInvalid, so callers that map ledger errors see a
// refused input.
var ErrInvalid = fmt.Errorf("not a valid phone number: %w", ledger.ErrInvalid)

// ErrRegion: a region code phonenumbers does not know.
var ErrRegion = errors.New("phone: unknown region")

// Normalizer reads phone numbers in a default region.
type Normalizer struct {
	// Region is the ISO 3166-1 alpha-2 code used for numbers without a
	// country code ("IL", "BG"); empty means only international numbers
	// ("+..." or "00...") are understood.
	Region string
}

// NewNormalizer checks the region.
func NewNormalizer(region string) (Normalizer, error) {
	region = strings.ToUpper(strings.TrimSpace(region))
	if region != "" && phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return Normalizer{}, fmt.Errorf("%w %q (want an ISO 3166-1 alpha-2 code such as IL, BG, DE)", ErrRegion, region)
	}
	return Normalizer{Region: region}, nil
}

// Normalize returns s in E.164 when it is a possible phone number of its
// country (the length and country code fit; number ranges are not checked,
// as operators reassign them faster than metadata follows), read in
// the region when it has no country code; ok is false when s is not one.
func (n Normalizer) Normalize(s string) (e164 string, ok bool) {
	s = strings.TrimSpace(s)
	region := n.Region
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "00") {
		region = "ZZ" // international: the number carries its country
		if strings.HasPrefix(s, "00") {
			s = "+" + s[2:]
		}
	}
	if region == "" {
		return "", false
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		return "", false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}

// Members is a ledger whose member lookups and enrolments understand phone
// numbers in any spelling. Everything else is the ledger's own.
type Members struct {
	*ledger.Ledger
	N Normalizer
}

// LookupAlias finds a member by the alias as given, then, when it is a
// phone number, by its E.164 form.
func (m Members) LookupAlias(alias string) (ledger.Member, error) {
	mem, err := m.Ledger.LookupAlias(alias)
	if err == nil || !errors.Is(err, ledger.ErrUnknownMember) {
		return mem, err
	}
	if e, ok := m.N.Normalize(alias); ok && e != alias {
		if mem, err2 := m.Ledger.LookupAlias(e); err2 == nil {
			return mem, nil
		}
	}
	return mem, err
}

// Enrol stores the contact phone, and the aliases that are that phone or
// written internationally ("+..."), in E.164, so the member is found with
// any spelling; a phone that is not a possible number is refused
// (ErrInvalid) before anything is written. Other aliases (card numbers,
// Wiegand "123-45678") are kept exactly as given.
func (m Members) Enrol(ctx context.Context, mem ledger.Member) (ledger.Member, error) {
	norm, err := m.N.Member(mem)
	if err != nil {
		return ledger.Member{}, err
	}
	return m.Ledger.Enrol(ctx, norm)
}

// Member returns mem with its contact phone, and the aliases that are that
// phone or start with '+', in E.164 (duplicates that normalising creates
// are dropped). Aliases are not guessed to be phones otherwise: a card
// number can look like a local phone number.
func (n Normalizer) Member(mem ledger.Member) (ledger.Member, error) {
	raw := mem.Contact.Phone
	if raw != "" {
		e, ok := n.Normalize(raw)
		if !ok {
			return mem, fmt.Errorf("contact phone %q: %w%s", raw, ErrInvalid, n.hint())
		}
		mem.Contact.Phone = e
	}
	aliases := make([]string, 0, len(mem.Aliases))
	for _, a := range mem.Aliases {
		if a == raw && raw != "" {
			a = mem.Contact.Phone
		} else if strings.HasPrefix(a, "+") {
			e, ok := n.Normalize(a)
			if !ok {
				return mem, fmt.Errorf("alias %q starts with '+' but is not a phone number: %w", a, ErrInvalid)
			}
			a = e
		}
		if !slices.Contains(aliases, a) {
			aliases = append(aliases, a)
		}
	}
	mem.Aliases = aliases
	return mem, nil
}

func (n Normalizer) hint() string {
	if n.Region == "" {
		return " (write it with its country code, e.g. +972501234567, or set register.phone_region)"
	}
	return " (for region " + n.Region + ")"
}
