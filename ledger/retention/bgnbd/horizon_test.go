package bgnbd_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
)

// same reports whether two results are the same bits (NaN included).
func same(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

// TestPredictIsTheThreeMethods holds Predict, with a Horizon shared by
// customers of one (X, T), to PAlive, PNoPurchase and ExpectedPurchases
// bit for bit, errors included: an eighth of the CDNOW customers, random ones, edge
// horizons and a = 1 (the nudged closed form).
func TestPredictIsTheThreeMethods(t *testing.T) {
	var cs []bgnbd.Customer
	for i, c := range loadSummary(t) {
		if i%8 == 0 {
			cs = append(cs, c)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		T := float64(rng.IntN(800)) / 7
		x := rng.IntN(40)
		tx := 0.0
		if x > 0 {
			tx = float64(1+rng.IntN(max(1, int(T*7)))) / 7
		}
		cs = append(cs, bgnbd.Customer{X: x, Tx: min(tx, T), T: T})
	}
	cs = append(cs, bgnbd.Customer{X: 0, Tx: 0, T: 0}, bgnbd.Customer{X: 3, Tx: 5, T: 4}, bgnbd.Customer{X: -1, T: 2},
		bgnbd.Customer{X: 1, Tx: 0, T: 3}, bgnbd.Customer{X: 2, Tx: 1, T: math.NaN()})
	params := []bgnbd.Params{published, {R: 0.9, Alpha: 4, A: 1, B: 3}, {R: 2, Alpha: 0.5, A: 0.3, B: 0.9}, {R: 1e-3, Alpha: 1e3, A: 50, B: 1e-3}}
	horizons := []float64{0, 13, 52, 1e-9, 1e7, -1, math.Inf(1), math.NaN()}
	compared, failed := 0, 0
	for _, p := range params {
		for _, hz := range horizons {
			for _, c := range cs {
				h := p.AtHorizon(c.X, c.T, hz)
				pa, pn, e, err := p.Predict(c, &h)
				if math.IsNaN(c.T) {
					// A horizon is found by its (X, T): NaN finds none.
					if err == nil {
						t.Fatalf("%+v: NaN age predicted", c)
					}
					continue
				}
				wantE, wantErr := p.ExpectedPurchases(c, hz)
				if !same(pa, p.PAlive(c)) || !same(pn, p.PNoPurchase(c, hz)) || !same(e, wantE) {
					t.Fatalf("%+v %+v t=%g: Predict %v %v %v, methods %v %v %v", p, c, hz, pa, pn, e, p.PAlive(c), p.PNoPurchase(c, hz), wantE)
				}
				if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
					t.Fatalf("%+v %+v t=%g: Predict error %v, ExpectedPurchases %v", p, c, hz, err, wantErr)
				}
				compared++
				if err != nil {
					failed++
				}
			}
		}
	}
	if failed == 0 || failed == compared {
		t.Fatalf("%d of %d comparisons failed: the errors are not both tried", failed, compared)
	}
}

// TestPredictRefusesAnotherHorizon: a Horizon of another (X, T) is not
// used.
func TestPredictRefusesAnotherHorizon(t *testing.T) {
	h := published.AtHorizon(2, 10, 13)
	for _, c := range []bgnbd.Customer{{X: 3, Tx: 5, T: 10}, {X: 2, Tx: 5, T: 11}} {
		if _, _, _, err := published.Predict(c, &h); !errors.Is(err, bgnbd.ErrInvalid) {
			t.Fatalf("%+v: %v, want ErrInvalid", c, err)
		}
	}
	if _, _, _, err := published.Predict(bgnbd.Customer{X: 2, Tx: 5, T: 10}, &h); err != nil {
		t.Fatal(err)
	}
}
