package export_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/export"
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
	if len(rows) != 3 || rows[0][0] != "sale_id" || rows[1][7] != "A" || rows[2][7] != "B" || rows[2][12] != "700" {
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
