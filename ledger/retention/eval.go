package retention

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
)

// EvalRow scores one way of flagging sleeping members at predicting "no
// purchase in the holdout".
type EvalRow struct {
	Rule      string    `json:"rule"`
	Sleep     SleepRule `json:"sleep_rule"` // zero for the flag-everyone baseline
	Flagged   int       `json:"flagged"`
	TP        int       `json:"tp"`
	FP        int       `json:"fp"`
	FN        int       `json:"fn"`
	Precision float64   `json:"precision"`
	Recall    float64   `json:"recall"`
	F1        float64   `json:"f1"`
	AUC       float64   `json:"auc"` // ranking quality of the rule's score; 0.5 = chance
}

// Eval is the evaluation of sleeping rules on a calibration/holdout split.
type Eval struct {
	CalibrationEnd string     `json:"calibration_end"`
	HoldoutEnd     string     `json:"holdout_end"`
	HoldoutDays    int        `json:"holdout_days"`
	Members        int        `json:"members"`
	Positives      int        `json:"no_purchase_in_holdout"`
	Model          bgnbd.Fit  `json:"model"`
	Rank           *RankModel `json:"rank_model"`
	// RankSelection is how the ranking model's spec was chosen: by a
	// validation split inside calibration (SelectRank).
	RankSelection *RankSelection `json:"rank_selection"`
	// BaseRankAUC is the holdout AUC of the base spec (the ranking model
	// shipped before the selection), for the record; it chooses nothing.
	BaseRankAUC float64 `json:"base_rank_auc"`
	// PreviousRankAUC is the holdout AUC of PreviousRankSpec (the fourth
	// round's choice), for the record; it chooses nothing.
	PreviousRankAUC float64 `json:"previous_rank_auc"`
	// EarlierRankAUC is the holdout AUC of EarlierRankSpec (one
	// validation split), for the record; it chooses nothing.
	EarlierRankAUC float64   `json:"earlier_rank_auc"`
	Input          string    `json:"input,omitempty"` // the file's name, set by the caller
	Purchases      int       `json:"purchase_entries"`
	FirstPurchase  string    `json:"first_purchase"`
	LastPurchase   string    `json:"last_purchase"`
	Rows           []EvalRow `json:"rows"`
}

// RankRuleName is the evaluation's name of the ranking model's row.
const RankRuleName = "learned ranking (trained in calibration)"

// EvalRules are the rules the evaluation scores, in table order, after the
// flag-everyone baseline.
func EvalRules(holdoutDays int) []struct {
	Name string
	Rule SleepRule
} {
	return []struct {
		Name string
		Rule SleepRule
	}{
		{"fixed 6 weeks (Square)", SleepRule{Kind: SleepFixed, FixedDays: 42}},
		{"3 x own mean interval", SleepRule{Kind: SleepIntervals, Intervals: 3}},
		{"BG/NBD P(active) < 0.5", SleepRule{Kind: SleepPAlive, Threshold: 0.5}},
		{fmt.Sprintf("BG/NBD P(no purchase in %d days) > 0.5", holdoutDays), SleepRule{Kind: SleepPNone, Threshold: 0.5, WindowDays: holdoutDays}},
		{fmt.Sprintf("P(no purchase in %d days) > 0.5 or 3 x own interval (default)", holdoutDays), SleepRule{Kind: SleepPNone, Threshold: 0.5, WindowDays: holdoutDays, Intervals: 3}},
	}
}

// Evaluate splits every member's history at calEnd (inclusive), analyses
// the calibration part, and scores each sleeping rule against whether the
// member bought again within holdoutDays after calEnd. Members with no
// calibration purchase are not scored.
func Evaluate(members []Member, calEnd time.Time, holdoutDays int, cfg *Config) (*Eval, error) {
	if holdoutDays < 1 {
		return nil, fmt.Errorf("%w: holdout of %d days", ErrInvalid, holdoutDays)
	}
	c := cfg.withDefaults()
	cal := DayOf(calEnd, c.Location)
	holdEnd := cal + Day(holdoutDays)
	calMembers := make([]Member, len(members))
	bought := map[string]bool{}
	for i, m := range members {
		cm := m
		cm.Purchases = nil
		for _, p := range m.Purchases {
			if DayOf(p.At, c.Location) <= cal {
				cm.Purchases = append(cm.Purchases, p)
			}
		}
		calMembers[i] = cm
		h, _ := Clean(m, holdEnd.Time(), &c)
		for _, d := range h.Days {
			if d > cal && d <= holdEnd {
				bought[m.ID] = true
				break
			}
		}
	}
	base := c
	base.Sleeping = SleepRule{Kind: SleepFixed}
	a, err := Analyze(calMembers, cal.Time(), &base)
	if err != nil {
		return nil, err
	}
	if a.Model == nil {
		return nil, fmt.Errorf("evaluate: %s", a.ModelError)
	}
	ev := &Eval{CalibrationEnd: cal.String(), HoldoutEnd: holdEnd.String(), HoldoutDays: holdoutDays, Model: *a.Model}
	first, last := Day(1<<30), Day(-1<<30)
	for _, m := range members {
		for _, p := range m.Purchases {
			ev.Purchases++
			d := DayOf(p.At, c.Location)
			first, last = min(first, d), max(last, d)
		}
	}
	if ev.Purchases > 0 {
		ev.FirstPurchase, ev.LastPurchase = first.String(), last.String()
	}
	var scored []*Profile
	var truth []bool
	for i := range a.Profiles {
		p := &a.Profiles[i]
		if p.Rhythm.PurchaseDays == 0 {
			continue
		}
		scored = append(scored, p)
		pos := !bought[p.MemberID]
		truth = append(truth, pos)
		if pos {
			ev.Positives++
		}
	}
	ev.Members = len(scored)
	all := make([]bool, len(scored))
	flat := make([]float64, len(scored))
	for i := range all {
		all[i] = true
	}
	ev.Rows = append(ev.Rows, score("flag everyone (base rate)", SleepRule{}, all, flat, truth))
	for _, r := range EvalRules(holdoutDays) {
		a.Sleeping = r.Rule.withDefaults()
		flags := make([]bool, len(scored))
		scores := make([]float64, len(scored))
		for i, p := range scored {
			q := *p
			if a.Sleeping.Kind == SleepPNone {
				q.PNone = a.Model.PNoPurchase(a.Customer(p), float64(a.Sleeping.WindowDays)/7)
			}
			flags[i] = a.IsSleeping(&q)
			scores[i] = a.sleepScore(&q)
		}
		ev.Rows = append(ev.Rows, score(r.Name, a.Sleeping, flags, scores, truth))
	}
	// The ranking model sees the calibration purchases only: its spec is
	// chosen by a validation split inside calibration (on the CDNOW sample
	// that is DefaultRankSpec), then it is trained on a split inside
	// calibration and applied as of its end.
	if ev.RankSelection, err = SelectRank(calMembers, cal.Time(), DefaultRankInnerDays, &c); err != nil {
		return nil, fmt.Errorf("evaluate: ranking selection: %w", err)
	}
	rank, err := TrainRankSpec(calMembers, cal.Time(), DefaultRankInnerDays, ev.RankSelection.Chosen, &c)
	if err != nil {
		return nil, fmt.Errorf("evaluate: ranking model: %w", err)
	}
	ev.Rank = rank
	flags := make([]bool, len(scored))
	scores := make([]float64, len(scored))
	for i, p := range scored {
		scores[i], _ = rank.ScoreProfile(a, p)
		flags[i] = scores[i] > 0.5
	}
	ev.Rows = append(ev.Rows, score(RankRuleName, SleepRule{}, flags, scores, truth))
	baseRank, err := TrainRankSpec(calMembers, cal.Time(), DefaultRankInnerDays, RankSpec{Features: "base", L2: 1e-3, Cuts: 1}, &c)
	if err != nil {
		return nil, fmt.Errorf("evaluate: base ranking model: %w", err)
	}
	for i, p := range scored {
		scores[i], _ = baseRank.ScoreProfile(a, p)
	}
	ev.BaseRankAUC = AUC(scores, truth)
	prevRank, err := TrainRankSpec(calMembers, cal.Time(), DefaultRankInnerDays, PreviousRankSpec, &c)
	if err != nil {
		return nil, fmt.Errorf("evaluate: previous ranking model: %w", err)
	}
	for i, p := range scored {
		scores[i], _ = prevRank.ScoreProfile(a, p)
	}
	ev.PreviousRankAUC = AUC(scores, truth)
	earlierRank, err := TrainRankSpec(calMembers, cal.Time(), DefaultRankInnerDays, EarlierRankSpec, &c)
	if err != nil {
		return nil, fmt.Errorf("evaluate: earlier ranking model: %w", err)
	}
	for i, p := range scored {
		scores[i], _ = earlierRank.ScoreProfile(a, p)
	}
	ev.EarlierRankAUC = AUC(scores, truth)
	return ev, nil
}

// sleepScore is the continuous quantity behind a rule: larger means more
// likely asleep. It ranks members for the AUC.
func (a *Analysis) sleepScore(p *Profile) float64 {
	switch a.Sleeping.Kind {
	case SleepFixed:
		return float64(p.DaysSince)
	case SleepIntervals:
		iv := a.ownInterval(p)
		if iv <= 0 {
			return 0
		}
		return float64(p.DaysSince) / iv
	case SleepPAlive:
		return 1 - p.PAlive
	case SleepPNone:
		// Members flagged by their own intervals alone rank just above
		// the threshold, so the score agrees with the flag; the ranking
		// is otherwise the model's.
		if iv := a.ownInterval(p); a.Sleeping.Intervals > 0 && iv > 0 && float64(p.DaysSince) > a.Sleeping.Intervals*iv {
			return math.Max(p.PNone, a.Sleeping.Threshold+1e-9)
		}
		return p.PNone
	}
	return 0
}

func score(name string, rule SleepRule, flags []bool, scores []float64, truth []bool) EvalRow {
	r := EvalRow{Rule: name, Sleep: rule}
	for i, f := range flags {
		switch {
		case f && truth[i]:
			r.TP++
		case f && !truth[i]:
			r.FP++
		case !f && truth[i]:
			r.FN++
		}
		if f {
			r.Flagged++
		}
	}
	if r.TP+r.FP > 0 {
		r.Precision = float64(r.TP) / float64(r.TP+r.FP)
	}
	if r.TP+r.FN > 0 {
		r.Recall = float64(r.TP) / float64(r.TP+r.FN)
	}
	if r.Precision+r.Recall > 0 {
		r.F1 = 2 * r.Precision * r.Recall / (r.Precision + r.Recall)
	}
	r.AUC = AUC(scores, truth)
	return r
}

// AUC is the probability that a random positive scores above a random
// negative (ties count one half): the Mann-Whitney statistic with average
// ranks. It is 0.5 when either class is empty.
func AUC(scores []float64, truth []bool) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	var pos, neg, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks are 1-based: (i+1 + j)/2
		for k := i; k < j; k++ {
			if truth[idx[k]] {
				rankSum += avg
			}
		}
		i = j
	}
	for _, t := range truth {
		if t {
			pos++
		} else {
			neg++
		}
	}
	if pos == 0 || neg == 0 {
		return 0.5
	}
	u := rankSum - pos*(pos+1)/2
	return math.Round(u/(pos*neg)*1e12) / 1e12
}
