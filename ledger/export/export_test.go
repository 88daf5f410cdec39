package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/export"
	"github.com/loyalty-terminal/loyalty/ledger/ledgertest"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

type fakeLedger struct {
	sales   []ledger.Sale
	members []ledger.Member
	err     error
}

func (f fakeLedger) ForEachSale(fn func(ledger.Sale) error) error {
	for _, s := range f.sales {
		if err := fn(s); err != nil {
			return err
		}
	}
	return f.err
}

func (f fakeLedger) Balance(string) (ledger.Points, error) { return 7, f.err }

func (f fakeLedger) ForEachMember(fn func(ledger.Member) error) error {
	for _, m := range f.members {
		if err := fn(m); err != nil {
			return err
		}
	}
	return f.err
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want export.Format
		err  bool
	}{{"", export.JSON, false}, {"json", export.JSON, false}, {"csv", export.CSV, false}, {"xml", "", true}, {"CSV", "", true}} {
		got, err := export.ParseFormat(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseFormat(%q) = %q, %v", tc.in, got, err)
		}
		if tc.err && !errors.Is(err, export.ErrFormat) {
			t.Errorf("ParseFormat(%q) error %v is not ErrFormat", tc.in, err)
		}
	}
	if export.CSV.ContentType() == export.JSON.ContentType() {
		t.Fatal("CSV and JSON share a content type")
	}
}

func TestSalesCSVOneRowPerLine(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	l := fakeLedger{sales: []ledger.Sale{{ID: "s1", Register: "r1", Seq: 3, MemberID: "m1", WallTime: at, ClockTrusted: true, Total: 700,
		Lines: []ledger.Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 200}, {No: 2, SKU: "B", Quantity: 1, UnitPrice: 300}}}}}
	var buf bytes.Buffer
	if err := export.Sales(&buf, l, export.CSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "sale_id" || rows[1][7] != "A" || rows[2][7] != "B" || rows[2][12] != "700" || rows[1][13] != "400" || rows[2][13] != "300" {
		t.Fatalf("rows = %q", rows)
	}
}

func TestJSONLinesRoundTrip(t *testing.T) {
	l := fakeLedger{members: []ledger.Member{{ID: "m1", Name: "Dana"}, {ID: "m2", Name: "Eli"}}}
	var buf bytes.Buffer
	if err := export.Members(&buf, l, export.JSON); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	var got []string
	for dec.More() {
		var m ledger.Member
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m.ID)
	}
	if len(got) != 2 || got[0] != "m1" || got[1] != "m2" {
		t.Fatalf("members = %v", got)
	}
}

func TestIteratorErrorIsReturned(t *testing.T) {
	boom := errors.New("boom")
	for _, f := range []export.Format{export.JSON, export.CSV} {
		if err := export.Sales(&bytes.Buffer{}, fakeLedger{err: boom}, f); !errors.Is(err, boom) {
			t.Errorf("%s: err = %v, want boom", f, err)
		}
		if err := export.Members(&bytes.Buffer{}, fakeLedger{err: boom}, f); !errors.Is(err, boom) {
			t.Errorf("%s members: err = %v, want boom", f, err)
		}
	}
}

// TestRealLedgerExports: on a real ledger file, a sale with a reward
// exports its line amounts and the reward's discount (the rows add up to the
// total), a refund and a void export their lines, every point event is
// exported, and members carry their balance.
func TestRealLedgerExports(t *testing.T) {
	clk := ledgertest.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), true)
	l := ledgertest.Open(t, &ledger.Options{Register: "r1", Clock: clk, OfflineRedeemLimit: 1000,
		Engine: &ledgertest.Engine{Version: 1, FirstBonus: 50, Rewards: []rules.Reward{{ID: "coffee", Name: "Coffee", Points: 10, Discount: 350}}}})
	ctx := context.Background()
	if _, err := l.Enrol(ctx, ledger.Member{ID: "m1", Name: "Dana", Aliases: []string{"M00000017"}}); err != nil {
		t.Fatal(err)
	}
	lines := []ledger.Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 250}, {No: 2, SKU: "B", Quantity: 1, UnitPrice: 157}}
	if _, err := l.RecordSale(ctx, ledger.SaleRequest{ID: "s1", MemberID: "m1", HQReachable: true, Lines: lines}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordSale(ctx, ledger.SaleRequest{ID: "s2", MemberID: "m1", HQReachable: true, Lines: lines, Redemptions: []ledger.RedeemRequest{{RewardID: "coffee"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Refund(ctx, ledger.RefundRequest{ID: "rf1", SaleID: "s1", Lines: []ledger.RefundLine{{No: 1, Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Void(ctx, "v1", "s2", "wrong member"); err != nil {
		t.Fatal(err)
	}
	csvRows := func(write func(*bytes.Buffer) error) [][]string {
		t.Helper()
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	sales := csvRows(func(b *bytes.Buffer) error { return export.Sales(b, l, export.CSV) })
	var s2 ledger.Money
	for _, r := range sales[1:] {
		if r[0] == "s2" {
			v, _ := strconv.ParseInt(r[13], 10, 64)
			s2 += ledger.Money(v)
			if r[14] != "350" || r[15] != "coffee" || r[12] != "307" {
				t.Fatalf("s2 row %q: want reward_discount 350, rewards coffee, total 307", r)
			}
		}
	}
	if s2-350 != 307 {
		t.Fatalf("s2 line amounts %d - reward 350 != total 307", s2)
	}
	refunds := csvRows(func(b *bytes.Buffer) error { return export.Refunds(b, l, export.CSV) })
	if len(refunds) != 1+1+2 || refunds[1][0] != "rf1" || refunds[1][11] != "250" || refunds[2][0] != "v1" || refunds[2][5] != "true" {
		t.Fatalf("refunds: %q", refunds)
	}
	events := csvRows(func(b *bytes.Buffer) error { return export.PointEvents(b, l, export.CSV) })
	st, err := l.Statement("m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(events)-1 != len(st.Lines) {
		t.Fatalf("%d point events exported, the statement has %d", len(events)-1, len(st.Lines))
	}
	var sum ledger.Points
	for _, r := range events[1:] {
		v, _ := strconv.ParseInt(r[5], 10, 64)
		sum += ledger.Points(v)
	}
	members := csvRows(func(b *bytes.Buffer) error { return export.Members(b, l, export.CSV) })
	bal, _ := l.Balance("m1")
	if sum != st.Local || members[1][10] != strconv.FormatInt(int64(bal), 10) {
		t.Fatalf("events sum %d, statement %d, member row %q, balance %d", sum, st.Local, members[1], bal)
	}
	var buf bytes.Buffer
	if err := export.Members(&buf, l, export.JSON); err != nil {
		t.Fatal(err)
	}
	var m struct {
		ID      string `json:"id"`
		Balance int64  `json:"balance"`
	}
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m.ID != "m1" || m.Balance != int64(bal) {
		t.Fatalf("members JSON %s: %+v %v", buf.Bytes(), m, err)
	}
}

// TestSalesJSONCarriesTheFigures: the JSON export gives each sale with the
// figures docs/api.md promises, as the CSV rows do: line_amount on every
// line, the sale's reward_discount, rewards and sale_total, the line
// amounts minus the reward discount giving sale_total. It gave the raw
// sale without them.
func TestSalesJSONCarriesTheFigures(t *testing.T) {
	l := fakeLedger{sales: []ledger.Sale{{ID: "s1", Register: "r1", Seq: 3, Total: 300,
		Lines:       []ledger.Line{{No: 1, SKU: "A", Quantity: 2, UnitPrice: 200, Discount: 50}, {No: 2, SKU: "B", Quantity: 1, UnitPrice: 300}},
		Redemptions: []ledger.Redemption{{RewardID: "coffee", Discount: 350}}}}}
	var buf bytes.Buffer
	if err := export.Sales(&buf, l, export.JSON); err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID    string `json:"id"`
		Lines []struct {
			SKU        string `json:"sku"`
			LineAmount *int64 `json:"line_amount"`
		} `json:"lines"`
		SaleTotal      *int64   `json:"sale_total"`
		RewardDiscount *int64   `json:"reward_discount"`
		Rewards        []string `json:"rewards"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if got.ID != "s1" || len(got.Lines) != 2 || got.SaleTotal == nil || got.RewardDiscount == nil || got.Lines[0].LineAmount == nil || got.Lines[1].LineAmount == nil {
		t.Fatalf("export lacks the figures: %s", buf.Bytes())
	}
	if a, b := *got.Lines[0].LineAmount, *got.Lines[1].LineAmount; a != 350 || b != 300 || a+b-*got.RewardDiscount != *got.SaleTotal || len(got.Rewards) != 1 || got.Rewards[0] != "coffee" {
		t.Fatalf("figures do not add up: %s", buf.Bytes())
	}
}
