package retention

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
)

// TestTreesLearnAnInteraction: on rows whose target depends on an
// interaction a logistic regression cannot express (an XOR of two
// features' signs), boosted trees of depth 2 rank far better than chance
// and than the linear model; the same rows give the same trees; splits
// only use the features that matter most of the gain.
func TestTreesLearnAnInteraction(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n, k := 4000, 4
	X := make([]float64, 0, n*k)
	y := make([]float64, n)
	for i := range n {
		a, b, noise := rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
		X = append(X, 1, a, b, noise)
		p := 0.2
		if (a > 0) != (b > 0) {
			p = 0.8
		}
		if rng.Float64() < p {
			y[i] = 1
		}
	}
	base, trees, imp := fitTrees(X, k, y, 2, 100, 0.1)
	base2, trees2, _ := fitTrees(X, k, y, 2, 100, 0.1)
	if base != base2 || len(trees) != 100 || len(trees2) != 100 {
		t.Fatalf("base %v %v, %d %d trees", base, base2, len(trees), len(trees2))
	}
	m := &RankModel{Spec: RankSpec{Model: RankTrees}, TreeBase: base, Trees: trees}
	m2 := &RankModel{Spec: RankSpec{Model: RankTrees}, TreeBase: base2, Trees: trees2}
	w, err := fitLogistic(X, k, y, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	lm := &RankModel{Spec: RankSpec{Model: RankLogistic}, Intercept: w[0], Coef: w[1:]}
	scores, lin := make([]float64, n), make([]float64, n)
	truth := make([]bool, n)
	for i := range n {
		row := X[i*k+1 : i*k+k]
		scores[i], lin[i], truth[i] = m.scoreRow(row), lm.scoreRow(row), y[i] == 1
		if s2 := m2.scoreRow(row); s2 != scores[i] {
			t.Fatalf("row %d: %v then %v", i, scores[i], s2)
		}
		if !(scores[i] > 0 && scores[i] < 1) {
			t.Fatalf("row %d: probability %v", i, scores[i])
		}
	}
	aucT, aucL := AUC(scores, truth), AUC(lin, truth)
	if aucT < 0.75 || aucL > 0.6 {
		t.Errorf("trees AUC %.3f (want >= 0.75), logistic %.3f (want about 0.5)", aucT, aucL)
	}
	if imp[0]+imp[1] < 0.9 || math.Abs(imp[0]+imp[1]+imp[2]-1) > 1e-9 {
		t.Errorf("importance %v: the two features that matter should carry most of the gain", imp)
	}
	// An ensemble is the mean of the two probabilities.
	e := &RankModel{Spec: RankSpec{Model: RankEnsemble}, Intercept: w[0], Coef: w[1:], TreeBase: base, Trees: trees}
	if got, want := e.scoreRow(X[1:k]), (scores[0]+lin[0])/2; math.Abs(got-want) > 1e-15 {
		t.Errorf("ensemble %v, want %v", got, want)
	}
}

// TestTreeSplitsFollowThresholds: a row exactly on a cut goes left both
// when binned (training) and when compared with the threshold (scoring):
// a single-feature step target is learnt with training scores equal to
// what predict gives (30 values: each its own bin).
func TestTreeSplitsFollowThresholds(t *testing.T) {
	n, k := 600, 2
	X := make([]float64, 0, n*k)
	y := make([]float64, n)
	for i := range n {
		v := float64(i % 30)
		X = append(X, 1, v)
		if v > 14 {
			y[i] = 1
		}
	}
	base, trees, _ := fitTrees(X, k, y, 1, 30, 0.5)
	m := &RankModel{Spec: RankSpec{Model: RankTrees}, TreeBase: base, Trees: trees}
	for v := range 30 {
		p := m.scoreRow([]float64{float64(v)})
		if (v > 14) != (p > 0.5) {
			t.Errorf("value %d: probability %.3f", v, p)
		}
	}
}

// TestBGPairIsPNoPurchase: the ranking features' P(alive) and P(no
// purchase) are bgnbd's, bit for bit.
func TestBGPairIsPNoPurchase(t *testing.T) {
	p := &bgnbd.Params{R: 0.24, Alpha: 4.4, A: 0.79, B: 2.4}
	for _, c := range []bgnbd.Customer{{X: 0, Tx: 0, T: 10}, {X: 3, Tx: 20, T: 30}, {X: 12, Tx: 51, T: 52}} {
		for _, tw := range []float64{1, 13, 39} {
			pa, pn := bgPair(p, c, tw)
			if pa != p.PAlive(c) || pn != p.PNoPurchase(c, tw) {
				t.Errorf("%+v, %g weeks: %v %v, want %v %v", c, tw, pa, pn, p.PAlive(c), p.PNoPurchase(c, tw))
			}
		}
	}
}

// TestLog1pTableSameBits: the table of whole numbers is math.Log1p's.
func TestLog1pTableSameBits(t *testing.T) {
	ctx := rankCtx{log1p: rankLog1pTable(100)}
	for _, v := range []int{0, 1, 7, 99, 100, 5000} {
		if got, want := ctx.l1p(v), math.Log1p(float64(v)); got != want {
			t.Errorf("%d: %v, want %v", v, got, want)
		}
	}
}

// TestSelectLeavesOutWhatCannotTrain: when BG/NBD cannot be fitted as of
// the earliest split's cut (every member has bought once by then), the
// candidates with BG/NBD features are left out with the reason, another
// is chosen, and contact lists' training drops those two features.
func TestSelectLeavesOutWhatCannotTrain(t *testing.T) {
	end := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	e := DayOf(end, time.UTC)
	rng := rand.New(rand.NewPCG(5, 6))
	var ms []Member
	for i := range 400 {
		m := Member{ID: fmt.Sprintf("m%03d", i)}
		first := e - 400 + Day(rng.IntN(100))
		m.Purchases = append(m.Purchases, Purchase{SaleID: m.ID + "a", At: first.Time(), Amount: 1000})
		if i%2 == 0 {
			for d := e - 240 + Day(rng.IntN(60)); d <= e; d += Day(20 + rng.IntN(80)) {
				m.Purchases = append(m.Purchases, Purchase{SaleID: fmt.Sprintf("%s-%d", m.ID, d), At: d.Time(), Amount: 1500})
			}
		}
		ms = append(ms, m)
	}
	cands := []RankSpec{
		{Model: RankLogistic, Features: "base+inter+rhythm+bgnbd", L2: 0.1, Cuts: 1},
		{Model: RankLogistic, Features: "base+inter+rhythm", L2: 0.1, Cuts: 1},
	}
	sel, err := selectRank(ms, end, DefaultRankInnerDays, cands, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Candidates[0].LeftOut == "" || !strings.Contains(sel.Candidates[0].LeftOut, "BG/NBD") || sel.Chosen != cands[1] || len(sel.Candidates[1].FoldAUC) != RankFolds {
		t.Errorf("selection %+v", sel)
	}
	// Nothing trains at all: an error, not a choice.
	if _, err := selectRank(ms[:5], end, DefaultRankInnerDays, cands, nil); !errors.Is(err, ErrNoData) {
		t.Errorf("five members: %v", err)
	}
}

// TestContactRankingWithoutBGNBDAtTheCut: when nobody had bought twice by
// the training cut (BG/NBD cannot be fitted there), contact lists' model
// is the same spec without its BG/NBD features, and it scores members.
func TestContactRankingWithoutBGNBDAtTheCut(t *testing.T) {
	end := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	e := DayOf(end, time.UTC)
	rng := rand.New(rand.NewPCG(7, 8))
	var ms []Member
	for i := range 300 {
		m := Member{ID: fmt.Sprintf("m%03d", i)}
		m.Purchases = append(m.Purchases, Purchase{SaleID: m.ID + "a", At: (e - 400 + Day(rng.IntN(100))).Time(), Amount: 1000})
		if i%2 == 0 {
			for d := e - 80 + Day(rng.IntN(30)); d <= e; d += Day(10 + rng.IntN(20)) {
				m.Purchases = append(m.Purchases, Purchase{SaleID: fmt.Sprintf("%s-%d", m.ID, d), At: d.Time(), Amount: 1500})
			}
		}
		ms = append(ms, m)
	}
	a, err := Analyze(ms, end, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trainRank(histories(ms, end, &a.Config), e, DefaultRankInnerDays, DefaultRankSpec, nil); !errors.Is(err, ErrNoData) {
		t.Fatalf("the default spec trained without a BG/NBD fit at the cut: %v", err)
	}
	m, err := a.TrainRank(DefaultRankInnerDays)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(DefaultRankSpec.Features, "+bgnbd"); m.Spec.Features != want || len(m.Coef) != len(m.Features) {
		t.Errorf("trained %s with %d coefficients, want %s", m.Spec, len(m.Coef), want)
	}
	if s, ok := m.ScoreProfile(a, &a.Profiles[0]); !ok || !(s > 0 && s < 1) {
		t.Errorf("score %v %v", s, ok)
	}
}

// TestContactRankingWithoutAnAnalysisFit: an analysis whose own BG/NBD
// fit failed (Model nil) cannot give the "bgnbd" features when it scores
// its profiles, so its ranking is trained without them even where the fit
// at the cut works; before, every score was refused and the contact list
// fell back to member-id order.
func TestContactRankingWithoutAnAnalysisFit(t *testing.T) {
	end := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	e := DayOf(end, time.UTC)
	rng := rand.New(rand.NewPCG(9, 10))
	var ms []Member
	for i := range 400 {
		m := Member{ID: fmt.Sprintf("m%03d", i)}
		step := Day(15 + rng.IntN(60))
		stop := e - Day(rng.IntN(300))
		for d := e - 700 + Day(rng.IntN(60)); d <= stop; d += step {
			m.Purchases = append(m.Purchases, Purchase{SaleID: fmt.Sprintf("%s-%d", m.ID, d), At: d.Time(), Amount: 1500})
		}
		ms = append(ms, m)
	}
	a, err := Analyze(ms, end, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Model == nil {
		t.Fatal("test population: the analysis has no BG/NBD fit to take away")
	}
	if m, err := a.TrainRank(DefaultRankInnerDays); err != nil || m.Spec.Features != DefaultRankSpec.Features {
		t.Fatalf("with the analysis's fit: %v %v, want the default spec %s", m, err, DefaultRankSpec.Features)
	}
	a.Model = nil // as when the analysis's fit failed
	m, err := a.TrainRank(DefaultRankInnerDays)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(DefaultRankSpec.Features, "+bgnbd"); m.Spec.Features != want {
		t.Errorf("trained %s without the analysis's fit, want %s", m.Spec.Features, want)
	}
	if s, ok := m.ScoreProfile(a, &a.Profiles[0]); !ok || !(s > 0 && s < 1) {
		t.Errorf("score %v %v", s, ok)
	}
}
