package hqreport

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/export"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// oddStrings are texts the encoders must escape or quote as the standard
// library does.
var oddStrings = []string{"", "m1", "a<b>&c", "x&y", "p>q", "p<q", `q"uote`, `back\slash`, "tab\there", "new\nline", "cr\rx", "\x00\x1f\x7f",
	"ünïcödé", "日本", "\u2028\u2029", "\xff\xfe bad utf-8", " leading space", "\u00a0nbsp", "=SUM(A1)", "+1", "-2", "-2.5",
	"@x", "\tx", `\.`, "a,b", "2026-06-30"}

var oddFloats = []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1.0 / 3, 2.5e-7, 1e-6, 9.99999e-7, 1e20, 1e21, 123456789012345678,
	1e15, 999999999999999, 1e300, 5e-324, -7.25, 0.27659154274205780, 4.9406564584124654e-300, 12.0000001}

// oddDays are days whose text is not the plain YYYY-MM-DD of years 0 to
// 9999, or sits at its edges.
var oddDays = []retention.Day{0, -1, -719528, -719529, -800000, 2932896, 2932897, 3000000, 1 << 30, -(1 << 30)}

func randProfile(rng *rand.Rand) retention.Profile {
	str := func() string {
		if rng.IntN(3) == 0 {
			return oddStrings[rng.IntN(len(oddStrings))]
		}
		return fmt.Sprintf("m%07d", rng.IntN(1e7))
	}
	fl := func() float64 {
		if rng.IntN(3) == 0 {
			return oddFloats[rng.IntN(len(oddFloats))]
		}
		switch rng.IntN(3) {
		case 0:
			return float64(rng.IntN(400))
		case 1:
			return rng.Float64()
		}
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
	}
	day := func() retention.Day {
		if rng.IntN(4) == 0 {
			return oddDays[rng.IntN(len(oddDays))]
		}
		return retention.Day(rng.IntN(30000))
	}
	rhythm := func() retention.Rhythm {
		return retention.Rhythm{PurchaseDays: rng.IntN(50) - 1, First: day(), Last: day(),
			HasInterval: rng.IntN(2) == 0, MeanInterval: fl(), MedianInterval: fl(), ExpectedNext: day()}
	}
	p := retention.Profile{MemberID: str(), Name: str(), Consent: rng.IntN(2) == 0, Birthday: str(), Rhythm: rhythm(),
		Spend: retention.Money(rng.Int64N(1e9) - 1e6), FirstSpend: retention.Money(rng.Int64N(1e6)),
		Segment: retention.Segment(str()), Status: retention.Status(str()), DaysSince: rng.IntN(2000) - 5,
		PAlive: fl(), PNone: fl(), Expected: fl(), Value: str()}
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -8*3600)}
	for range rng.IntN(4) {
		c := retention.ChannelConsent{Channel: str(), Address: str(), How: str()}
		if rng.IntN(3) > 0 {
			c.Since = time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])
		}
		p.Channels = append(p.Channels, c)
	}
	for i := range rng.IntN(5) {
		p.Categories = append(p.Categories, retention.CategoryRhythm{Category: fmt.Sprintf("%c%s", 'a'+i, str()), Rhythm: rhythm()})
	}
	return p
}

// TestProfileJSONMatchesEncodingJSON: the hand-written member line is
// json.Marshal's, byte for byte, over random profiles full of text to
// escape and floats at every formatting boundary.
func TestProfileJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 20000 {
		p := randProfile(rng)
		want, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendProfile(nil, &p, nil)
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("profile %d (ok %v):\n got %s\nwant %s", i, ok, got, want)
		}
	}
	for _, f := range oddFloats {
		want, _ := json.Marshal(f)
		if got, ok := appendFloat(nil, f); !ok || string(got) != string(want) {
			t.Errorf("float %v: %s, want %s", f, got, want)
		}
	}
	// What JSON cannot carry is left to encoding/json and its error.
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		p := randProfile(rng)
		p.Categories = nil
		p.Expected = f
		if _, ok := appendProfile(nil, &p, nil); ok {
			t.Errorf("expected %v encoded", f)
		}
		if err := (&Report{Members: []retention.Profile{p}}).WriteJSON(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "unsupported value") {
			t.Errorf("expected %v: %v", f, err)
		}
	}
	p := randProfile(rng)
	p.Channels = []retention.ChannelConsent{{Channel: "sms", Since: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if _, ok := appendProfile(nil, &p, nil); ok {
		t.Error("a year past 9999 encoded")
	}
}

// TestProfileFieldsKnown: the hand-written encoder writes the fields
// listed here; a field added to the profile fails this test until the
// encoder writes it too.
func TestProfileFieldsKnown(t *testing.T) {
	for _, c := range []struct {
		v    any
		tags string
	}{
		{retention.Profile{}, `member_id name,omitempty consent channels,omitempty birthday,omitempty rhythm categories,omitempty spend first_spend segment status days_since_last p_alive p_no_purchase expected_purchases value  `},
		{retention.Rhythm{}, `purchase_days - - has_interval mean_interval_days median_interval_days -`},
		{retention.ChannelConsent{}, `channel address,omitempty since,omitzero how,omitempty`},
	} {
		ty := reflect.TypeOf(c.v)
		var tags []string
		for i := range ty.NumField() {
			tags = append(tags, ty.Field(i).Tag.Get("json"))
		}
		if got := strings.Join(tags, " "); got != c.tags {
			t.Errorf("%s fields %q, the encoder writes %q", ty.Name(), got, c.tags)
		}
	}
}

func FuzzProfileJSON(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s, 0.5, int64(100))
	}
	f.Fuzz(func(t *testing.T, s string, v float64, n int64) {
		p := retention.Profile{MemberID: s, Name: s, Value: s, Expected: v, PAlive: v, Spend: retention.Money(n),
			Rhythm: retention.Rhythm{PurchaseDays: len(s), First: retention.Day(n), Last: retention.Day(n / 2), HasInterval: n%2 == 0, MeanInterval: v,
				ExpectedNext: retention.Day(-n)}, Categories: retention.CategoryRhythms{{Category: s}},
			Channels: []retention.ChannelConsent{{Channel: s, How: s, Since: time.Unix(n%(1<<35), 0)}}}
		want, err := json.Marshal(&p)
		got, ok := appendProfile(nil, &p, nil)
		if (err == nil) != ok || ok && !bytes.Equal(got, want) {
			t.Fatalf("got %s (%v), want %s (%v)", got, ok, want, err)
		}
	})
}

// membersCSVReference is the members CSV as encoding/csv wrote it before
// the export was written by hand.
func membersCSVReference(r *Report) string {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write(MembersCSVHeader)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	money := func(v retention.Money) string {
		neg := v < 0
		if neg {
			v = -v
		}
		s := fmt.Sprintf("%d.%02d", v/100, v%100)
		if neg {
			s = "-" + s
		}
		return s
	}
	for _, p := range r.Members {
		cw.Write(export.SafeRow([]string{p.MemberID, strconv.FormatBool(p.Consent), string(p.Segment), string(p.Status), p.Value,
			strconv.Itoa(p.Rhythm.PurchaseDays), p.Rhythm.FirstDate(), p.Rhythm.LastDate(), f(p.Rhythm.MeanInterval), f(p.Rhythm.MedianInterval),
			p.Rhythm.ExpectedNextDate(), strconv.Itoa(p.DaysSince), money(p.Spend), f(p.PAlive), f(p.PNone), f(p.Expected)}))
	}
	cw.Flush()
	return b.String()
}

// TestMembersCSVMatchesEncodingCSV: the hand-written members CSV is what
// encoding/csv wrote of export.SafeRow, including infinities, NaN, the
// largest amounts and text to quote or defuse.
func TestMembersCSVMatchesEncodingCSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	r := &Report{}
	for range 5000 {
		r.Members = append(r.Members, randProfile(rng))
	}
	extreme := randProfile(rng)
	extreme.Spend, extreme.PAlive, extreme.PNone, extreme.Expected = math.MinInt64, math.NaN(), math.Inf(1), math.Inf(-1)
	r.Members = append(r.Members, extreme)
	extreme.Spend = math.MaxInt64
	r.Members = append(r.Members, extreme)
	var got bytes.Buffer
	if err := r.WriteMembersCSV(&got); err != nil {
		t.Fatal(err)
	}
	want := membersCSVReference(r)
	if got.String() != want {
		g, w := strings.Split(got.String(), "\n"), strings.Split(want, "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("line %d:\n got %q\nwant %q", i+1, g[i], w[i])
			}
		}
		t.Fatalf("%d lines, want %d", len(g), len(w))
	}
}

// TestAppendFixed4 holds appendFixed4 to strconv's 'f' with four decimals
// on ties (exactly representable halves, rounded to even), values next to
// them, the range's edges and what falls back to strconv.
func TestAppendFixed4(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, 0.5, 0.03125, 0.09375, 0.00005, 0.00015, 0.99995, 0.999949999,
		1.00005, 2.5, 12.34565, 1e-300, 5e-324, math.SmallestNonzeroFloat64, 1e9 - 1e-6, 1e9, 1e12, -0.00004, -1.5,
		math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, 123456.78125, 0.0000499999999999}
	for k := range 20000 {
		// Every tie n/20000 that binary holds exactly, and its neighbours.
		v := float64(2*k+1) / 20000
		vals = append(vals, v, math.Nextafter(v, 0), math.Nextafter(v, 1))
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 20000 {
		vals = append(vals, rng.Float64(), rng.Float64()*1e4, math.Float64frombits(rng.Uint64()))
	}
	for _, v := range vals {
		want := strconv.AppendFloat([]byte("x"), v, 'f', 4, 64)
		if got := appendFixed4([]byte("x"), v); string(got) != string(want) {
			t.Fatalf("%v (%#x): %q, strconv %q", v, math.Float64bits(v), got, want)
		}
	}
}

func FuzzAppendFixed4(f *testing.F) {
	f.Add(0.03125)
	f.Add(0.5)
	f.Add(999999999.99995)
	f.Fuzz(func(t *testing.T, v float64) {
		want := strconv.AppendFloat(nil, v, 'f', 4, 64)
		if got := appendFixed4(nil, v); string(got) != string(want) {
			t.Fatalf("%v (%#x): %q, strconv %q", v, math.Float64bits(v), got, want)
		}
	})
}

// TestAppendInt: appendInt writes what strconv.AppendInt writes, around
// each of its cases and at the ends of int64.
func TestAppendInt(t *testing.T) {
	vals := []int64{math.MinInt64, math.MinInt64 + 1, -100001, -1, math.MaxInt64}
	for v := int64(-20); v <= 200_100; v++ {
		vals = append(vals, v)
	}
	for _, v := range vals {
		if got, want := appendInt([]byte("x"), v), strconv.AppendInt([]byte("x"), v, 10); !bytes.Equal(got, want) {
			t.Fatalf("%d: %q, want %q", v, got, want)
		}
	}
}

// TestAppendCSVCell: a cell is written as encoding/csv writes
// export.SafeCell's text, for every string of up to three bytes from a
// set of the characters each rule turns on, and the odd strings.
func TestAppendCSVCell(t *testing.T) {
	chars := []string{"a", "Z", "0", " ", "\t", "\r", "\n", `"`, ",", "=", "+", "-", "@", `\`, ".", "é", "\x00", "\x7f"}
	strs := append([]string{""}, oddStrings...)
	for _, a := range chars {
		strs = append(strs, a)
		for _, b := range chars {
			strs = append(strs, a+b)
			for _, c := range chars {
				strs = append(strs, a+b+c)
			}
		}
	}
	for _, s := range strs {
		if got, want := appendCSVCell([]byte("x"), s), appendCSVField([]byte("x"), export.SafeCell(s)); !bytes.Equal(got, want) {
			t.Fatalf("%q: %q, want %q", s, got, want)
		}
	}
}

// TestAppendShortestF: the 'f' form rearranged from the 'e' form is
// strconv's 'f' form with the shortest digits, byte for byte: random
// bits over every exponent, random numbers in the ranges a report
// formats (probabilities, expectations, intervals), and the edges.
func TestAppendShortestF(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(f float64) {
		t.Helper()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return
		}
		want := strconv.AppendFloat([]byte("x"), f, 'f', -1, 64)
		if got := appendShortestF([]byte("x"), f); !bytes.Equal(got, want) {
			t.Fatalf("%v (%#x): %s, want %s", f, math.Float64bits(f), got, want)
		}
	}
	for range 300_000 {
		check(math.Float64frombits(rng.Uint64()))
		check(rng.Float64())
		check(rng.Float64() * math.Pow(10, float64(rng.IntN(44)-22)))
		check(float64(rng.IntN(1000)) / float64(1+rng.IntN(1000)))
	}
	for _, f := range append([]float64{0, math.Copysign(0, -1), 1, -1, 0.1, 0.5, 1e-6, 1e-7, 9.999999999999999e-7, 1e20, 1e21, 1e22, 123456789012345678,
		math.MaxFloat64, math.SmallestNonzeroFloat64, -math.MaxFloat64, 5e-324, 1.5, 10, 100.25, 0.001, 12.5e-5}, oddFloats...) {
		check(f)
		check(-f)
	}
}
