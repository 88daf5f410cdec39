package rules_test

import (
	"fmt"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

func Example() {
	rs, err := rules.Decode([]byte(`{
		"version": 1,
		"timezone": "Asia/Jerusalem",
		"earn": {"points_per_unit": 1},
		"campaigns": [{"id": "double-tuesday", "multiplier": 2, "weekdays": ["tue"]}],
		"first_purchase_bonus": 50,
		"expiry_months": 12
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// A member's second visit, on a Tuesday, with a trusted clock.
	out, err := rs.Evaluate(rules.SaleInput{
		Lines:        []rules.LineInput{{No: 1, SKU: "4006381333931", Amount: 1250}},
		Member:       rules.MemberState{ID: "m-1", Purchases: 1, FirstBonusPending: true},
		At:           time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC),
		ClockTrusted: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("line points:", out.Lines[0].Points)
	fmt.Println("bonuses:", out.Bonuses)
	fmt.Println("total:", out.Total())
	fmt.Println("expires:", out.ExpiresAt.Format(time.DateOnly))
	// Output:
	// line points: 25
	// bonuses: [{first-purchase 50}]
	// total: 75
	// expires: 2027-12-01
}

func ExamplePartialReverse() {
	// A line of 3 units earned 10 points; it is refunded one unit at a time.
	var done int64
	for range 3 {
		r, _ := rules.PartialReverse(10, 3, done, 1)
		done++
		fmt.Print(r, " ")
	}
	fmt.Println()
	// Output: 3 3 4
}

func ExampleRuleSet_Validate() {
	rs := rules.RuleSet{Version: 1, Earn: rules.Rate{PointsPerUnit: rules.NewDec(1, 0)},
		Campaigns: []rules.Campaign{{ID: "x", Multiplier: rules.NewDec(20, 0), Weekdays: []string{"tue"}}}}
	fmt.Println(rs.Validate())
	// Output: rules: invalid rule set: campaigns[0].multiplier: must be between 1 and 10 (got 20)
}
