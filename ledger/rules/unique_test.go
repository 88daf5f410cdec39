package rules_test

import (
	"errors"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// TestValidateUniqueIDs: every list keyed by an id (category rates, SKU
// rates, campaigns, tiers, rewards) refuses an empty id and a repeated one,
// naming the first use.
func TestValidateUniqueIDs(t *testing.T) {
	rate := rules.Rate{Exclude: true}
	for _, tc := range []struct {
		name    string
		mutate  func(rs *rules.RuleSet)
		path    string
		message string
	}{
		{"category repeated", func(rs *rules.RuleSet) {
			rs.CategoryRates = []rules.CategoryRate{{Category: "a", Rate: rate}, {Category: "b", Rate: rate}, {Category: "a", Rate: rate}}
		}, "category_rates[2].category", `"a" is already in category_rates[0]`},
		{"category empty", func(rs *rules.RuleSet) {
			rs.CategoryRates = []rules.CategoryRate{{Rate: rate}}
		}, "category_rates[0].category", "must not be empty"},
		{"sku repeated", func(rs *rules.RuleSet) {
			rs.SKURates = []rules.SKURate{{SKU: "x", Rate: rate}, {SKU: "x", Rate: rate}}
		}, "sku_rates[1].sku", `"x" is already in sku_rates[0]`},
		{"sku empty", func(rs *rules.RuleSet) {
			rs.SKURates = []rules.SKURate{{SKU: "x", Rate: rate}, {Rate: rate}}
		}, "sku_rates[1].sku", "must not be empty"},
		{"campaign repeated", func(rs *rules.RuleSet) {
			rs.Campaigns = []rules.Campaign{{ID: "c", BonusPoints: 1, Weekdays: []string{"mon"}}, {ID: "c", BonusPoints: 2, Weekdays: []string{"tue"}}}
		}, "campaigns[1].id", `"c" is already used by campaigns[0]`},
		{"campaign empty", func(rs *rules.RuleSet) {
			rs.Campaigns = []rules.Campaign{{BonusPoints: 1, Weekdays: []string{"mon"}}}
		}, "campaigns[0].id", "must not be empty"},
		{"tier repeated", func(rs *rules.RuleSet) {
			rs.Tiers = []rules.Tier{{Name: "base"}, {Name: "gold", MinSpend: 100}, {Name: "gold", MinSpend: 200}}
		}, "tiers[2].name", `"gold" is already tiers[1]`},
		{"tier empty", func(rs *rules.RuleSet) {
			rs.Tiers = []rules.Tier{{}}
		}, "tiers[0].name", "must not be empty"},
		{"reward repeated", func(rs *rules.RuleSet) {
			rs.Rewards = []rules.Reward{{ID: "r", Name: "R", Points: 10, Discount: 1}, {ID: "r", Name: "S", Points: 20, Discount: 2}}
		}, "rewards[1].id", `"r" is already rewards[0]`},
		{"reward empty", func(rs *rules.RuleSet) {
			rs.Rewards = []rules.Reward{{Name: "R", Points: 10, Discount: 1}}
		}, "rewards[0].id", "must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := basic(t)
			tc.mutate(rs)
			var ve rules.ValidationErrors
			if err := rs.Validate(); !errors.As(err, &ve) || !errors.Is(err, rules.ErrInvalid) {
				t.Fatalf("Validate() = %v, want ValidationErrors wrapping ErrInvalid", err)
			}
			if len(ve) != 1 || ve[0].Path != tc.path || ve[0].Msg != tc.message {
				t.Errorf("got %v\nwant exactly %s: %s", ve, tc.path, tc.message)
			}
		})
	}
}
