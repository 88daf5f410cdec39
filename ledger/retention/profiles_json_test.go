package retention

import (
	"encoding/json"
	"testing"
)

// TestRhythmJSONRoundTripsOddDays: what Rhythm.MarshalJSON writes reads
// back to the same rhythm, for days outside years 0 to 9999 too (Day.
// AppendDate writes those with a sign or a longer year); a CategoryRhythm
// keeps its category both ways.
func TestRhythmJSONRoundTripsOddDays(t *testing.T) {
	for _, d := range []Day{-1, 0, 20000, -719529, -719530, 2932897, 1 << 30, -(1 << 30)} {
		r := Rhythm{PurchaseDays: 2, First: d, Last: d + 1, HasInterval: true, MeanInterval: 1, MedianInterval: 1, ExpectedNext: d + 2}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var got Rhythm
		if err := json.Unmarshal(b, &got); err != nil || got != r {
			t.Fatalf("day %d: %s read back as %+v (%v), want %+v", d, b, got, err, r)
		}
		c := CategoryRhythm{Category: "cds", Rhythm: r}
		if b, err = json.Marshal(c); err != nil {
			t.Fatal(err)
		}
		var gotc CategoryRhythm
		if err := json.Unmarshal(b, &gotc); err != nil || gotc != c {
			t.Fatalf("day %d: %s read back as %+v (%v), want %+v", d, b, gotc, err, c)
		}
	}
	for _, bad := range []string{"2023-02-30", "2023-13-01", "23-01-01", "2023-1-01", "+2023-01-01", "2023-01-+1", "x", "02023-01-01", "-0000-01-01", "-00001-01-01"} {
		var r Rhythm
		if err := json.Unmarshal([]byte(`{"purchase_days":1,"first":"`+bad+`"}`), &r); err == nil {
			t.Errorf("date %q read as %+v, want an error", bad, r)
		}
	}
}
