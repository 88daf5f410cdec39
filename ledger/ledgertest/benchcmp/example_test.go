package benchcmp_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

// A benchmark comparing a hand-written encoder with encoding/json prints
// "RATIO itoa_vs_json <hand/json>" after both sides ran.
func ExampleCompare() {
	_ = func(b *testing.B) {
		benchcmp.Compare(b, benchcmp.Options{Ratio: "itoa_vs_json", Items: 1, Unit: "number"},
			benchcmp.Case{Name: "hand", Op: func(*testing.B) { _ = strconv.AppendInt(nil, 42, 10) }},
			benchcmp.Case{Name: "json", Op: func(*testing.B) { _, _ = json.Marshal(42) }})
	}
}
