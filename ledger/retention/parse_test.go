package retention_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

func TestParseMoney(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want retention.Money
		err  bool
	}{
		{"29.33", 2933, false}, {"0.00", 0, false}, {"5", 500, false}, {"0.5", 50, false}, {"-12.10", -1210, false}, {".5", 50, false},
		{"1.234", 0, true}, {"abc", 0, true}, {"", 0, true}, {"1.", 0, true}, {"1e3", 0, true}, {"99999999999999999999", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := retention.ParseMoney(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("ParseMoney(%q) = %d, %v", tc.in, got, err)
			}
			if err != nil && !errors.Is(err, retention.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, cdnow string
	}{
		{"short line", " 00004 0001 19970101  2\n"},
		{"bad date", " 00004 0001 1997010x  2   29.33\n"},
		{"bad amount", " 00004 0001 19970101  2   29.333\n"},
		{"bad quantity", " 00004 0001 19970101  x   29.33\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := retention.ParseCDNOW(strings.NewReader(tc.cdnow)); !errors.Is(err, retention.ErrInvalid) {
				t.Errorf("err = %v", err)
			}
		})
	}
	for _, tc := range []struct{ name, csv string }{
		{"missing column", "member_id,at,amount\nm,2026-01-01,1\n"},
		{"bad time", "member_id,sale_id,at,amount\nm,s,yesterday,1\n"},
		{"empty member", "member_id,sale_id,at,amount\n,s,2026-01-01,1\n"},
		{"bad amount", "member_id,sale_id,at,amount\nm,s,2026-01-01,1.234\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := retention.ParsePurchasesCSV(strings.NewReader(tc.csv)); !errors.Is(err, retention.ErrInvalid) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestParseCSV(t *testing.T) {
	ms, err := retention.ParsePurchasesCSV(strings.NewReader("member_id,sale_id,at,amount,categories\nm2,s1,2026-01-01T10:00:00Z,12.50,coffee;cake\nm1,s2,2026-01-02,3,\nm2,s1,2026-01-03,-2.50,\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].ID != "m1" || len(ms[1].Purchases) != 2 || ms[1].Purchases[0].Amount != 1250 || len(ms[1].Purchases[0].Categories) != 2 {
		t.Fatalf("%+v", ms)
	}
	ms, err = retention.ParseMembersCSV(strings.NewReader("member_id,consent,birthday\nm1,yes,--02-29\nm3,no,\n"), ms)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || !ms[0].Consent || ms[0].Birthday != "--02-29" || ms[2].ID != "m3" {
		t.Fatalf("%+v", ms)
	}
	if _, err := retention.ParseMembersCSV(strings.NewReader("member_id,consent\nm1,maybe\n"), nil); !errors.Is(err, retention.ErrInvalid) {
		t.Errorf("consent maybe: %v", err)
	}
}

func FuzzParseCDNOW(f *testing.F) {
	f.Add(" 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n")
	f.Add(" 1 2 19970101 1 0.00\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := retention.ParseCDNOW(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, retention.ErrInvalid) && !strings.Contains(err.Error(), "read cdnow") {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		for _, m := range ms {
			if m.ID == "" || len(m.Purchases) == 0 {
				t.Fatalf("bad member %+v", m)
			}
		}
	})
}

func FuzzParsePurchasesCSV(f *testing.F) {
	f.Add("member_id,sale_id,at,amount,categories\nm2,s1,2026-01-01T10:00:00Z,12.50,coffee;cake\n")
	f.Add("member_id,sale_id,at,amount\n")
	f.Add("\"")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := retention.ParsePurchasesCSV(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, retention.ErrInvalid) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		for _, m := range ms {
			if m.ID == "" {
				t.Fatal("empty id accepted")
			}
		}
	})
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"1.23", "-0.5", "", "9999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := retention.ParseMoney(s)
		if err != nil {
			return
		}
		// Whatever parses must format back to the same number of cents.
		w, err := retention.ParseMoney(fmt.Sprintf("%d.%02d", v/100, abs(v%100)))
		if v > -100 && v < 0 {
			w, err = retention.ParseMoney(fmt.Sprintf("-0.%02d", -v))
		}
		if err != nil || w != v {
			t.Fatalf("%q -> %d -> %d, %v", s, v, w, err)
		}
	})
}

func abs(v retention.Money) retention.Money {
	if v < 0 {
		return -v
	}
	return v
}

// TestMembersConsentChannels: consent per channel in the members file and
// as dated events (given, withdrawn) in the consents file; every bad line
// is an error and nothing is returned.
func TestMembersConsentChannels(t *testing.T) {
	ms, err := retention.ParseMembersCSV(strings.NewReader("member_id,name,email,phone,consent,enrolled_at\n"+
		"a,Ana,a@x.org,+1555,sms;email,2025-01-01\nb,Boris,,+1666,yes,2025-01-01\nc,,,,yes,\nd,,d@x.org,,no,\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	asOf := day("2025-06-01")
	chans := func(m retention.Member) string {
		var s []string
		for _, c := range m.ChannelsAt(asOf) {
			s = append(s, c.Channel+"="+c.Address)
		}
		return strings.Join(s, " ")
	}
	for i, want := range []string{"sms=+1555 email=a@x.org", "sms=+1666 phone=+1666", "in-store=", ""} {
		if got := chans(ms[i]); got != want {
			t.Errorf("%s: channels %q, want %q", ms[i].ID, got, want)
		}
	}
	ms, err = retention.ParseConsentsCSV(strings.NewReader("member_id,channel,consent,at,how\n"+
		"d,email,yes,2025-02-01,web\na,sms,no,2025-05-01,reply STOP\na,sms,yes,2025-07-01,in-store form\n"), ms)
	if err != nil {
		t.Fatal(err)
	}
	if got := chans(ms[0]); got != "email=a@x.org" {
		t.Errorf("a after withdrawing sms: %q", got)
	}
	if got := ms[0].ChannelsAt(day("2025-07-02")); len(got) != 2 || got[0].How != "in-store form" {
		t.Errorf("a after giving sms again: %+v", got)
	}
	if got := chans(ms[3]); got != "email=d@x.org" {
		t.Errorf("d: %q", got)
	}
	for _, tc := range []struct{ name, members, consents string }{
		{"unknown channel", "member_id,consent,phone\nm,pigeon,+1\n", ""},
		{"sms without a phone", "member_id,consent\nm,sms\n", ""},
		{"unknown column", "member_id,consent,channel\nm,yes,sms\n", ""},
		{"consent for an unknown member", "member_id,consent\nm,no\n", "member_id,channel,consent,at\nx,sms,yes,2025-01-01\n"},
		{"consent event without a date", "member_id,consent,phone\nm,no,+1\n", "member_id,channel,consent,at\nm,sms,yes,\n"},
		{"consent event maybe", "member_id,consent,phone\nm,no,+1\n", "member_id,channel,consent,at\nm,sms,maybe,2025-01-01\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := retention.ParseMembersCSV(strings.NewReader(tc.members), nil)
			if err == nil && tc.consents != "" {
				ms, err = retention.ParseConsentsCSV(strings.NewReader(tc.consents), ms)
			}
			if !errors.Is(err, retention.ErrInvalid) || ms != nil {
				t.Errorf("err = %v, members %v", err, ms)
			}
		})
	}
}
