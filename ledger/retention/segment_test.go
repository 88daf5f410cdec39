package retention_test

import (
	"fmt"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// A member whose one and only basket is large is high-value but still new:
// the contact list offers them the first-time benefit and must not label
// the row VIP (issue 13 item 4: "VIP members marked first-time"). A member
// who spent as much over several days is the VIP.
func TestSegmentBigFirstBasketIsNewNotVIP(t *testing.T) {
	asOf := day("2026-06-30")
	var ms []retention.Member
	for i := range 20 { // ordinary repeat buyers, small baskets
		id := fmt.Sprintf("r%02d", i)
		ms = append(ms, retention.Member{ID: id, Consent: true, Purchases: []retention.Purchase{
			buy(id+"a", "2026-03-01", 1000), buy(id+"b", "2026-04-01", 1000)}})
	}
	ms = append(ms,
		retention.Member{ID: "big-once", Consent: true, Purchases: []retention.Purchase{buy("o1", "2026-06-20", 90000)}},
		retention.Member{ID: "big-often", Consent: true, Purchases: []retention.Purchase{
			buy("v1", "2026-03-01", 30000), buy("v2", "2026-04-01", 30000), buy("v3", "2026-05-01", 30000)}},
	)
	// 22 buyers, VIP share 0.1: the top three by spend are high-value.
	a, err := retention.Analyze(ms, asOf, &retention.Config{Sleeping: retention.SleepRule{Kind: retention.SleepIntervals}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id      string
		segment retention.Segment
		value   string
	}{
		{"big-once", retention.SegNew, "high"},
		{"big-often", retention.SegVIP, "high"},
		{"r00", retention.SegVIP, "high"}, // third by spend (ties by id), came back: VIP
		{"r01", retention.SegSecond, "mid"},
	} {
		p, ok := a.Profile(tc.id)
		if !ok {
			t.Fatalf("no profile %s", tc.id)
		}
		if p.Segment != tc.segment || p.Value != tc.value {
			t.Errorf("%s: segment %s value %s, want %s %s", tc.id, p.Segment, p.Value, tc.segment, tc.value)
		}
	}
	cs, err := a.ContactList(nil, &retention.ContactOptions{HoldoutShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cs {
		if c.Kind == retention.ContactFirstTime && c.Segment == retention.SegVIP {
			t.Errorf("%s: first-time contact labelled VIP", c.MemberID)
		}
		if c.MemberID == "big-once" {
			found = true
			if c.Kind != retention.ContactFirstTime || c.Segment != retention.SegNew || c.Value != "high" {
				t.Errorf("big-once row: kind %s segment %s value %s, want first-time new high", c.Kind, c.Segment, c.Value)
			}
		}
	}
	if !found {
		t.Error("big-once not listed for the first-time message")
	}
}
