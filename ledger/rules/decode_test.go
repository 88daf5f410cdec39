package rules_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

func TestDecode(t *testing.T) {
	data, err := os.ReadFile("testdata/ruleset.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if rs.Version != 3 || *rs.CategoryRates[1].PercentBack != 25000 || *rs.Campaigns[1].Multiplier != 15000 {
		t.Errorf("decoded %+v", rs)
	}
	// Round trip: encoding and decoding again gives the same rule set.
	enc, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := rules.Decode(enc)
	if err != nil {
		t.Fatalf("Decode(Marshal): %v\n%s", err, enc)
	}
	if !reflect.DeepEqual(rs, again) {
		t.Errorf("round trip differs:\n%+v\n%+v", rs, again)
	}
	// Black Friday 2026 in Sofia, a member in the base tier: 1.5x and 20 bonus.
	out, err := rs.Evaluate(rules.SaleInput{
		Lines:  []rules.LineInput{{No: 1, SKU: "x", Amount: 1000}, {No: 2, SKU: "y", Category: "tobacco", Amount: 5000}},
		Member: rules.MemberState{ID: "m", Purchases: 2},
		At:     time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), ClockTrusted: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Total() != 35 || out.Lines[1].Points != 0 {
		t.Errorf("outcome %+v, want 15 + 20 bonus, tobacco 0", out)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		frag string
	}{
		{"unknown field", `{"version":1,"earn":{"points_per_unit":1},"bogus":1}`, "unknown field"},
		{"trailing data", `{"version":1,"earn":{"points_per_unit":1}} {}`, "after the document"},
		{"not json", `version: 1`, "decode"},
		{"float with too many places", `{"version":1,"earn":{"points_per_unit":0.00001}}`, "at most 4 decimal places"},
		{"negative multiplier", `{"version":1,"earn":{"points_per_unit":-1}}`, "decimal"},
		{"invalid rules", `{"version":1,"earn":{}}`, "earn: set points_per_unit or percent_back"},
		{"null", `null`, "version: must be at least 1"},
		{"too big", `{"name":"` + strings.Repeat("x", rules.MaxDocument) + `"}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := rules.Decode([]byte(tt.doc))
			if !errors.Is(err, rules.ErrInvalid) || rs != nil {
				t.Fatalf("Decode = %v, %v; want ErrInvalid", rs, err)
			}
			if !strings.Contains(err.Error(), tt.frag) {
				t.Errorf("error %q does not contain %q", err, tt.frag)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	if data, err := os.ReadFile("testdata/ruleset.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"version":1,"earn":{"points_per_unit":"1.5"}}`))
	f.Add([]byte(`{"version":1,"earn":{"percent_back":5},"campaigns":[{"id":"a","multiplier":2,"weekdays":["tue"]}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := rules.Decode(data)
		if err != nil {
			if !errors.Is(err, rules.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := rs.Validate(); err != nil {
			t.Fatalf("decoded rule set does not validate: %v", err)
		}
		// Whatever was accepted must score a plain sale without panicking.
		out, err := rs.Evaluate(rules.SaleInput{Lines: []rules.LineInput{{No: 1, Amount: 12345}},
			Member: rules.MemberState{ID: "m"}, At: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), ClockTrusted: true})
		if err == nil && out.Total() < 0 {
			t.Fatalf("negative points %d", out.Total())
		}
	})
}

// TestYAMLRoundTrip checks that a rule set written as YAML (as in the
// register's config) reads back the same, decimals included.
func TestYAMLRoundTrip(t *testing.T) {
	data, err := os.ReadFile("testdata/ruleset.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	var back rules.RuleSet
	dec := yaml.NewDecoder(bytes.NewReader(y))
	dec.KnownFields(true)
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decode: %v\n%s", err, y)
	}
	if !reflect.DeepEqual(rs, &back) {
		t.Errorf("YAML round trip differs:\n%s", y)
	}
	if !strings.Contains(string(y), "percent_back: 2.5\n") {
		t.Errorf("decimal not written as a plain number:\n%s", y)
	}
}

func TestDecYAMLErrors(t *testing.T) {
	for _, doc := range []string{"multiplier: 1.23456\n", "multiplier: [2]\n", "multiplier: -2\n", "multiplier: 2e3\n"} {
		var c rules.Campaign
		err := yaml.Unmarshal([]byte(doc), &c)
		var te *yaml.TypeError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: err = %v, want a yaml.TypeError naming line 1", doc, err)
		}
	}
}
