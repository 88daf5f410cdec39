package bgnbd_test

import (
	"encoding/csv"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"testing"

	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
)

// published is the fit in Fader, Hardie and Lee (2005) on CDNOW.
var published = bgnbd.Params{R: 0.2426, Alpha: 4.4135, A: 0.7929, B: 2.4258}

func loadSummary(t testing.TB) []bgnbd.Customer {
	t.Helper()
	f, err := os.Open("../../../testdata/cdnow/cdnow_customers_summary.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var cs []bgnbd.Customer
	for _, r := range rows[1:] {
		x, _ := strconv.Atoi(r[1])
		tx, _ := strconv.ParseFloat(r[2], 64)
		tt, _ := strconv.ParseFloat(r[3], 64)
		cs = append(cs, bgnbd.Customer{X: x, Tx: tx, T: tt})
	}
	return cs
}

func TestFitCDNOWSummary(t *testing.T) {
	cs := loadSummary(t)
	fit, err := bgnbd.FitParams(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fit %+v", fit)
	checkPublished(t, fit)
}

func checkPublished(t *testing.T, fit bgnbd.Fit) {
	t.Helper()
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"r", fit.R, published.R}, {"alpha", fit.Alpha, published.Alpha}, {"a", fit.A, published.A}, {"b", fit.B, published.B}} {
		if rel := math.Abs(c.got-c.want) / c.want; rel > 0.005 {
			t.Errorf("%s = %.4f, published %.4f (%.2f%% off)", c.name, c.got, c.want, rel*100)
		}
	}
	if math.Abs(fit.LogLik-(-9582.4)) > 0.5 {
		t.Errorf("log-likelihood %.2f, published -9582.4", fit.LogLik)
	}
}

func TestFitRecoversSimulated(t *testing.T) {
	truth := bgnbd.Params{R: 0.5, Alpha: 3, A: 0.8, B: 2.5}
	cs := bgnbd.Simulate(rand.NewPCG(1, 2), truth, 20000, 52, 1.0/7)
	fit, err := bgnbd.FitParams(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The sampling error on 20,000 customers is a few percent; 20% catches
	// a wrong likelihood without flaking.
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"r", fit.R, truth.R}, {"alpha", fit.Alpha, truth.Alpha}, {"a", fit.A, truth.A}, {"b", fit.B, truth.B}} {
		if rel := math.Abs(c.got-c.want) / c.want; rel > 0.2 {
			t.Errorf("%s = %.4f, truth %.4f", c.name, c.got, c.want)
		}
	}
	if fit.Distinct >= fit.Customers {
		t.Errorf("aggregation did nothing: %d distinct of %d", fit.Distinct, fit.Customers)
	}
}

// ten is ten customers like c.
func ten(c bgnbd.Customer) []bgnbd.Customer {
	cs := make([]bgnbd.Customer, 10)
	for i := range cs {
		cs[i] = c
	}
	return cs
}

func TestFitErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cs   []bgnbd.Customer
		opts *bgnbd.Options
		want error
	}{
		{"empty", nil, nil, bgnbd.ErrTooLittleData},
		{"nine customers", ten(bgnbd.Customer{X: 1, Tx: 1, T: 2})[:9], nil, bgnbd.ErrTooLittleData},
		{"no repeaters", ten(bgnbd.Customer{X: 0, T: 5}), nil, bgnbd.ErrTooLittleData},
		{"recency beyond age", append(ten(bgnbd.Customer{X: 1, Tx: 1, T: 2}), bgnbd.Customer{X: 1, Tx: 3, T: 2}), nil, bgnbd.ErrInvalid},
		{"negative count", append(ten(bgnbd.Customer{X: 1, Tx: 1, T: 2}), bgnbd.Customer{X: -1}), nil, bgnbd.ErrInvalid},
		{"recency without repeats", append(ten(bgnbd.Customer{X: 1, Tx: 1, T: 2}), bgnbd.Customer{X: 0, Tx: 1, T: 2}), nil, bgnbd.ErrInvalid},
		{"NaN age", append(ten(bgnbd.Customer{X: 1, Tx: 1, T: 2}), bgnbd.Customer{T: math.NaN()}), nil, bgnbd.ErrInvalid},
		{"bad init", loadSummary(t), &bgnbd.Options{Init: &bgnbd.Params{R: -1, Alpha: 1, A: 1, B: 1}}, bgnbd.ErrInvalid},
		// Everyone bought right up to the end: nobody ever drops out, so
		// the mean drop-out probability reaches its lower bound.
		{"unidentified", append(ten(bgnbd.Customer{X: 3, Tx: 10, T: 10}), ten(bgnbd.Customer{X: 5, Tx: 20, T: 20})...), nil, bgnbd.ErrDegenerate},
		{"iteration cap", loadSummary(t), &bgnbd.Options{MaxIterations: 3}, bgnbd.ErrNoConvergence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fit, err := bgnbd.FitParams(tc.cs, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v (fit %+v), want %v", err, fit, tc.want)
			}
			if errors.Is(err, bgnbd.ErrDegenerate) && (len(fit.AtBound) == 0 || fit.Validate() != nil) {
				t.Errorf("degenerate fit not returned with its bounds: %+v", fit)
			}
		})
	}
}

func TestPAliveHandComputed(t *testing.T) {
	p := bgnbd.Params{R: 1, Alpha: 1, A: 1, B: 2}
	// x=1, tx=1, T=3: a/(b+x-1) = 1/2, ((alpha+T)/(alpha+tx))^(r+x) = (4/2)^2 = 4
	// so P(alive) = 1/(1 + 0.5*4) = 1/3.
	if got := p.PAlive(bgnbd.Customer{X: 1, Tx: 1, T: 3}); math.Abs(got-1.0/3) > 1e-12 {
		t.Errorf("P(alive) = %v, want 1/3", got)
	}
	if got := p.PAlive(bgnbd.Customer{T: 30}); got != 1 {
		t.Errorf("one-purchase P(alive) = %v, want 1", got)
	}
	// P(no purchase in t=1) = 2/3 + 1/3*(4/5)^2.
	if got, want := p.PNoPurchase(bgnbd.Customer{X: 1, Tx: 1, T: 3}, 1), 2.0/3+(16.0/25)/3; math.Abs(got-want) > 1e-12 {
		t.Errorf("P(none) = %v, want %v", got, want)
	}
	// One purchase, age 3: alive for sure, (4/5)^1.
	if got := p.PNoPurchase(bgnbd.Customer{T: 3}, 1); math.Abs(got-0.8) > 1e-12 {
		t.Errorf("P(none) one-purchase = %v, want 0.8", got)
	}
}

// hyp2f1Series sums the Gauss series directly; only for checks well inside
// the unit disc.
func hyp2f1Series(a, b, c, z float64) float64 {
	sum, term := 1.0, 1.0
	for n := 0; n < 100000; n++ {
		term *= (a + float64(n)) * (b + float64(n)) / ((c + float64(n)) * float64(n+1)) * z
		sum += term
		if math.Abs(term) < 1e-16*math.Abs(sum) {
			break
		}
	}
	return sum
}

func TestExpectedPurchases(t *testing.T) {
	p := published
	// A brand-new customer (x=0, tx=0, T=0) has the population expectation.
	for _, horizon := range []float64{1, 10, 39, 78} {
		cond, err := p.ExpectedPurchases(bgnbd.Customer{}, horizon)
		if err != nil {
			t.Fatal(err)
		}
		pop, err := p.ExpectedPopulation(horizon)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(cond-pop) > 1e-9 {
			t.Errorf("t=%v: conditional %v != population %v", horizon, cond, pop)
		}
	}
	// The closed form against the hand-summed series (z = 39/(4.41+38.86+39) ~ 0.47).
	c := bgnbd.Customer{X: 2, Tx: 30.43, T: 38.86}
	got, err := p.ExpectedPurchases(c, 39)
	if err != nil {
		t.Fatal(err)
	}
	x := float64(c.X)
	z := 39 / (p.Alpha + c.T + 39)
	h := hyp2f1Series(p.R+x, p.B+x, p.A+p.B+x-1, z)
	want := (p.A + p.B + x - 1) / (p.A - 1) * (1 - math.Pow((p.Alpha+c.T)/(p.Alpha+c.T+39), p.R+x)*h) /
		(1 + p.A/(p.B+x-1)*math.Pow((p.Alpha+c.T)/(p.Alpha+c.Tx), p.R+x))
	if math.Abs(got-want) > 1e-9*want {
		t.Errorf("E[Y(39)] = %v, series gives %v", got, want)
	}
	// Near the edge of the unit disc (z = 0.99), where gonum switches to
	// its transformations, the closed form still agrees with the series.
	far := 99 * (p.Alpha + c.T)
	zf := far / (p.Alpha + c.T + far)
	gotFar, err := p.ExpectedPurchases(c, far)
	if err != nil {
		t.Fatal(err)
	}
	hf := hyp2f1Series(p.R+x, p.B+x, p.A+p.B+x-1, zf)
	wantFar := (p.A + p.B + x - 1) / (p.A - 1) * (1 - math.Pow((p.Alpha+c.T)/(p.Alpha+c.T+far), p.R+x)*hf) /
		(1 + p.A/(p.B+x-1)*math.Pow((p.Alpha+c.T)/(p.Alpha+c.Tx), p.R+x))
	if math.Abs(gotFar-wantFar) > 1e-6*wantFar {
		t.Errorf("z=0.99: E = %v, series gives %v", gotFar, wantFar)
	}
	// Monotone in the horizon, and finite far out where z is close to 1
	// (the series alone would need millions of terms there).
	prev := 0.0
	for _, horizon := range []float64{1, 10, 100, 1e4, 1e7} {
		e, err := p.ExpectedPurchases(c, horizon)
		if err != nil {
			t.Fatalf("t=%g: %v", horizon, err)
		}
		if e < prev {
			t.Errorf("t=%g: %v < %v", horizon, e, prev)
		}
		prev = e
	}
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1)} {
		if _, err := p.ExpectedPurchases(c, bad); !errors.Is(err, bgnbd.ErrInvalid) {
			t.Errorf("horizon %v: err = %v, want ErrInvalid", bad, err)
		}
	}
}

// groupCustomers folds cs as FitGrouped takes them: distinct summaries
// in order of first appearance with their counts, and the same of every
// tenth customer.
func groupCustomers(cs []bgnbd.Customer) bgnbd.Grouped {
	fold := func(cs []bgnbd.Customer, step int) []bgnbd.Group {
		var out []bgnbd.Group
		at := map[bgnbd.Customer]int{}
		for i := 0; i < len(cs); i += step {
			if j, ok := at[cs[i]]; ok {
				out[j].N++
				continue
			}
			at[cs[i]] = len(out)
			out = append(out, bgnbd.Group{Customer: cs[i], N: 1})
		}
		return out
	}
	return bgnbd.Grouped{All: fold(cs, 1), Tenth: fold(cs, 10)}
}

// TestFitGroupedIsFitParams: the fit of folded customers is FitParams'
// fit of them, to the bit, with the warm start (many distinct summaries)
// and without (CDNOW), and fails as FitParams does.
func TestFitGroupedIsFitParams(t *testing.T) {
	sim := bgnbd.Simulate(rand.NewPCG(7, 8), bgnbd.Params{R: 0.5, Alpha: 3, A: 0.8, B: 2.5}, 60_000, 52, 1.0/7)
	for _, tc := range []struct {
		name string
		cs   []bgnbd.Customer
		opts *bgnbd.Options
	}{
		{"simulated, warm start", sim, nil},
		{"CDNOW", loadSummary(t), nil},
		{"CDNOW from a start", loadSummary(t), &bgnbd.Options{Init: &bgnbd.Params{R: 1, Alpha: 2, A: 1, B: 1}}},
		{"nine customers", ten(bgnbd.Customer{X: 1, Tx: 1, T: 2})[:9], nil},
		{"no repeaters", ten(bgnbd.Customer{X: 0, T: 5}), nil},
		{"recency beyond age", append(ten(bgnbd.Customer{X: 1, Tx: 1, T: 2}), bgnbd.Customer{X: 1, Tx: 3, T: 2}), nil},
		{"unidentified", append(ten(bgnbd.Customer{X: 3, Tx: 10, T: 10}), ten(bgnbd.Customer{X: 5, Tx: 20, T: 20})...), nil},
		{"iteration cap", loadSummary(t), &bgnbd.Options{MaxIterations: 3}},
		// Counts far beyond the number of groups: ordered by a sort,
		// not by counting.
		{"few groups, large counts", append(append(ten(bgnbd.Customer{X: 0, T: 30}), ten(bgnbd.Customer{X: 60, Tx: 20, T: 30})...),
			ten(bgnbd.Customer{X: 2, Tx: 3, T: 30})...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := bgnbd.FitParams(tc.cs, tc.opts)
			got, err := bgnbd.FitGrouped(groupCustomers(tc.cs), tc.opts)
			for _, sentinel := range []error{bgnbd.ErrInvalid, bgnbd.ErrTooLittleData, bgnbd.ErrDegenerate, bgnbd.ErrNoConvergence} {
				if errors.Is(err, sentinel) != errors.Is(wantErr, sentinel) || (err == nil) != (wantErr == nil) {
					t.Fatalf("err = %v, FitParams' %v", err, wantErr)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("FitGrouped %+v\nFitParams  %+v", got, want)
			}
		})
	}
	if _, err := bgnbd.FitGrouped(bgnbd.Grouped{All: []bgnbd.Group{{Customer: bgnbd.Customer{X: 1, Tx: 1, T: 2}, N: 0}}}, nil); !errors.Is(err, bgnbd.ErrInvalid) {
		t.Errorf("a group of no customers: err = %v, want ErrInvalid", err)
	}
}
