package ledger

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/ledgertest/benchcmp"
)

func pointEventsToEncode() []PointEvent {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	jer := time.FixedZone("IST", 2*3600)
	return []PointEvent{
		{},
		{ID: "r1-1", Register: "r1", Seq: 1, Kind: KindEarn, MemberID: "m1", Points: 12, SaleID: "s1", Line: 2, ExpiresAt: at.AddDate(1, 0, 0), RuleVersion: 3, WallTime: at, ClockTrusted: true, TimeRef: TimeRef{BootID: "b", SinceBoot: 99, ClockFault: "ahead"}},
		{ID: "r1-2", Register: "r1", Seq: 2, Kind: KindRedeem, MemberID: "m<1>&\"x\\", Points: -50, Reason: "coffee\u2028\n\x01é", Operator: "op", WallTime: at.In(jer)},
		{ID: "r1-3", Register: "r1", Seq: 3, Kind: KindReverse, MemberID: "m1", Points: -7, Reverses: "r1-1", Reason: "refund r\xff", WallTime: time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC)},
		{ID: "x", WallTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "x", ExpiresAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
}

// TestEncodePointEventMatchesJSON: the hand-written encoder writes what
// encoding/json writes, escapes, zones and refused times included.
func TestEncodePointEventMatchesJSON(t *testing.T) {
	for i, ev := range pointEventsToEncode() {
		want, wantErr := json.Marshal(ev)
		got, err := encodePointEvent(&ev)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("event %d:\n got %s %v\nwant %s %v", i, got, err, want, wantErr)
		}
	}
}

func FuzzEncodePointEvent(f *testing.F) {
	f.Add("r1-1", "m1", "s1", "reason", "boot", int64(5), int64(1_700_000_000_000_000_000), 3600, true)
	f.Add("r<1>", "m\u2028", "s\xff", "\x00", "", int64(-5), int64(-62_000_000_000_000_000), -7200, false)
	f.Fuzz(func(t *testing.T, id, member, sale, reason, boot string, pts, nanos int64, off int, trusted bool) {
		zone := time.FixedZone("z", off%(30*3600))
		ev := PointEvent{ID: id, Register: "r1", Seq: uint64(pts), Kind: KindBonus, MemberID: member, Points: Points(pts), SaleID: sale, Line: int(pts % 7), Reason: reason,
			ExpiresAt: time.Unix(0, nanos).In(zone).AddDate(1, 0, 0), WallTime: time.Unix(0, nanos).In(zone), ClockTrusted: trusted, TimeRef: TimeRef{BootID: boot, SinceBoot: pts}}
		want, wantErr := json.Marshal(ev)
		got, err := encodePointEvent(&ev)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("got %s %v\nwant %s %v", got, err, want, wantErr)
		}
	})
}

// BenchmarkEncodePointEvent holds the hand-written encoder against
// encoding/json on a sale's earn event.
func BenchmarkEncodePointEvent(b *testing.B) {
	ev := pointEventsToEncode()[1]
	benchcmp.Compare(b, benchcmp.Options{Ratio: "encodepointevent_vs_json", Unit: "event"},
		benchcmp.Case{Name: "hand", Op: func(b *testing.B) {
			if _, err := encodePointEvent(&ev); err != nil {
				b.Fatal(err)
			}
		}},
		benchcmp.Case{Name: "json", Op: func(b *testing.B) {
			if _, err := json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}})
}

func salesToEncode() []Sale {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	return []Sale{
		{},
		{ID: "s1", Register: "r1", Seq: 7, MemberID: "m1", Lines: []Line{{No: 1, SKU: "4006381333931", Quantity: 2, UnitPrice: 1290, Category: "dairy"}, {No: 2, SKU: "x<&>\"\\", Quantity: 1, UnitPrice: 5, Discount: 1}},
			Tenders: []Tender{{Kind: "card", Amount: 2584}}, Redemptions: []Redemption{{RewardID: "coffee", Points: 150, Discount: 300}}, Total: 2584,
			WallTime: at, ClockTrusted: true, RuleVersion: 3, TimeRef: TimeRef{BootID: "b", SinceBoot: 5, ClockFault: "ahead"}},
		{ID: "s\xff", Lines: []Line{}, Tenders: []Tender{}, Redemptions: []Redemption{}, WallTime: at.In(time.FixedZone("X", -5*3600))},
		{ID: "y", WallTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
}

// TestEncodeSaleMatchesJSON: the hand-written sale encoder writes what
// encoding/json writes: nil and empty lists, escapes, zones, refused times.
func TestEncodeSaleMatchesJSON(t *testing.T) {
	for i, s := range salesToEncode() {
		want, wantErr := json.Marshal(s)
		got, err := encodeSale(&s)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("sale %d:\n got %s %v\nwant %s %v", i, got, err, want, wantErr)
		}
	}
}

func FuzzEncodeSale(f *testing.F) {
	f.Add("s1", "m1", "sku", "cat", "card", "boot", int64(5), int64(1_700_000_000_000_000_000), 3600, 2, true)
	f.Add("s<1>", "", "s\xff", "\u2028", "", "", int64(-5), int64(-62_000_000_000_000_000), -7200, 0, false)
	f.Fuzz(func(t *testing.T, id, member, sku, cat, kind, boot string, n, nanos int64, off, lines int, trusted bool) {
		s := Sale{ID: id, Register: "r1", Seq: uint64(n), MemberID: member, Total: Money(n), WallTime: time.Unix(0, nanos).In(time.FixedZone("z", off%(30*3600))),
			ClockTrusted: trusted, RuleVersion: int(n % 9), TimeRef: TimeRef{BootID: boot, SinceBoot: n}}
		for i := range lines % 4 {
			s.Lines = append(s.Lines, Line{No: i + 1, SKU: sku, Quantity: n, UnitPrice: Money(n * 3), Discount: Money(n % 2), Category: cat})
			s.Tenders = append(s.Tenders, Tender{Kind: kind, Amount: Money(n)})
			s.Redemptions = append(s.Redemptions, Redemption{RewardID: kind, Points: Points(n), Discount: Money(i)})
		}
		want, wantErr := json.Marshal(s)
		got, err := encodeSale(&s)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("got %s %v\nwant %s %v", got, err, want, wantErr)
		}
	})
}

// BenchmarkEncodeSale holds the hand-written sale encoder against
// encoding/json on a typical three-line member sale.
func BenchmarkEncodeSale(b *testing.B) {
	s := salesToEncode()[1]
	s.Lines = typicalSale("s1", 1).Lines
	benchcmp.Compare(b, benchcmp.Options{Ratio: "encodesale_vs_json", Unit: "sale"},
		benchcmp.Case{Name: "hand", Op: func(b *testing.B) {
			if _, err := encodeSale(&s); err != nil {
				b.Fatal(err)
			}
		}},
		benchcmp.Case{Name: "json", Op: func(b *testing.B) {
			if _, err := json.Marshal(s); err != nil {
				b.Fatal(err)
			}
		}})
}
