package retention_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// TestRankModelDoesNotPeek: the ranking model of the evaluation is trained
// on calibration purchases only; moving, adding or removing holdout
// purchases changes nothing about it, and it ranks better than days absent
// on CDNOW.
func TestRankModelDoesNotPeek(t *testing.T) {
	ms := loadCDNOW(t)
	ev, err := retention.Evaluate(ms, calEnd, 273, &retention.Config{KeepZeroAmount: true})
	if err != nil {
		t.Fatal(err)
	}
	// Drop every holdout purchase: the model must be identical.
	var calOnly []retention.Member
	for _, m := range ms {
		c := m
		c.Purchases = nil
		for _, p := range m.Purchases {
			if !p.At.After(calEnd) {
				c.Purchases = append(c.Purchases, p)
			}
		}
		calOnly = append(calOnly, c)
	}
	m2, err := retention.TrainRank(calOnly, calEnd, retention.DefaultRankInnerDays, &retention.Config{KeepZeroAmount: true})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*ev.Rank) != fmt.Sprint(*m2) {
		t.Errorf("model differs without the holdout:\n%+v\n%+v", *ev.Rank, *m2)
	}
	var rank, days retention.EvalRow
	for _, r := range ev.Rows {
		switch {
		case r.Rule == retention.RankRuleName:
			rank = r
		case r.Sleep.Kind == retention.SleepFixed:
			days = r
		}
	}
	if !(rank.AUC > days.AUC) {
		t.Errorf("ranking AUC %.4f does not beat days absent %.4f", rank.AUC, days.AUC)
	}
	if ev.Rank.Members != 2357 || ev.Rank.Cut != "1997-07-01" || len(ev.Rank.Coef) != len(ev.Rank.Features) || ev.Rank.Spec != retention.DefaultRankSpec {
		t.Errorf("model %+v", *ev.Rank)
	}
	if _, err := retention.TrainRank(ms[:5], calEnd, 91, nil); !errors.Is(err, retention.ErrNoData) {
		t.Errorf("five members: %v", err)
	}
}

// TestCDNOWMasterLayout: the canonical master file's four fields (id,
// date, CDs, dollars), with or without a header, comma or space
// separated, give the same members as the sample's five.
func TestCDNOWMasterLayout(t *testing.T) {
	sample := loadCDNOW(t)
	var four, header strings.Builder
	header.WriteString("customer_id,date,cds,dollars\n")
	for _, m := range sample {
		for _, p := range m.Purchases {
			fmt.Fprintf(&four, "%s %s 1 %d.%02d\n", m.ID, p.At.Format("20060102"), p.Amount/100, p.Amount%100)
			fmt.Fprintf(&header, "%s,%s,1,%d.%02d\n", m.ID, p.At.Format("20060102"), p.Amount/100, p.Amount%100)
		}
	}
	for name, text := range map[string]string{"four fields": four.String(), "header and commas": header.String()} {
		got, err := retention.ParseCDNOW(strings.NewReader(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(sample) {
			t.Fatalf("%s: %d members, want %d", name, len(got), len(sample))
		}
		for i := range got {
			if got[i].ID != sample[i].ID || len(got[i].Purchases) != len(sample[i].Purchases) {
				t.Fatalf("%s: member %d: %s with %d purchases, want %s with %d", name, i, got[i].ID, len(got[i].Purchases), sample[i].ID, len(sample[i].Purchases))
			}
		}
	}
	for _, bad := range []string{
		" 1 2 19970101 1 1.00\n3 19970101 1 1.00\n", // layouts mixed
		"1 19970101 1\n",                         // three fields
		"1 19970101 1 1.00\nx 19970101 1 1.00\n", // a header line after data
	} {
		if ms, err := retention.ParseCDNOW(strings.NewReader(bad)); !errors.Is(err, retention.ErrInvalid) || ms != nil {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestDefaultRankSpecIsSelected: the shipped spec is the one the
// validation split inside CDNOW's calibration period chooses (nothing of
// the holdout is read: SelectRank cleans the histories as of the
// calibration end), and the choice repeats without the holdout purchases.
func TestDefaultRankSpecIsSelected(t *testing.T) {
	ms := loadCDNOW(t)
	sel, err := retention.SelectRank(ms, calEnd, retention.DefaultRankInnerDays, &retention.Config{KeepZeroAmount: true})
	if err != nil {
		t.Fatal(err)
	}
	if sel.Chosen != retention.DefaultRankSpec {
		t.Errorf("validation chose %s (AUC %.4f), DefaultRankSpec is %s", sel.Chosen, sel.ChosenAUC, retention.DefaultRankSpec)
	}
	if len(sel.Candidates) != len(retention.RankCandidates()) || len(sel.Folds) != retention.RankFolds || sel.Folds[0].TrainCut != "1997-04-01" || sel.Folds[0].ValidCut != "1997-07-01" || sel.End != "1997-09-30" ||
		sel.Folds[2].ValidCut != "1997-05-02" || sel.Folds[2].End != "1997-08-01" {
		t.Errorf("selection %+v", sel)
	}
	for _, c := range sel.Candidates {
		if c.ValidationAUC > sel.ChosenAUC {
			t.Errorf("%s scored %.4f, above the chosen %.4f", c.Spec, c.ValidationAUC, sel.ChosenAUC)
		}
	}
	var calOnly []retention.Member
	for _, m := range ms {
		c := m
		c.Purchases = nil
		for _, p := range m.Purchases {
			if !p.At.After(calEnd) {
				c.Purchases = append(c.Purchases, p)
			}
		}
		calOnly = append(calOnly, c)
	}
	sel2, err := retention.SelectRank(calOnly, calEnd, retention.DefaultRankInnerDays, &retention.Config{KeepZeroAmount: true})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*sel) != fmt.Sprint(*sel2) {
		t.Errorf("selection differs without the holdout:\n%+v\n%+v", *sel, *sel2)
	}
	if _, err := retention.TrainRankSpec(ms, calEnd, 91, retention.RankSpec{Features: "everything", Cuts: 1}, nil); !errors.Is(err, retention.ErrInvalid) {
		t.Errorf("unknown feature set: %v", err)
	}
}
