package retention

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestCategoryRhythmsJSONIsTheMap: a member's category rhythms are written
// as the map they were before (keys sorted, escaped), read back the same,
// and found by Get.
func TestCategoryRhythmsJSONIsTheMap(t *testing.T) {
	m := map[string]Rhythm{}
	var names []string
	for i, c := range []string{"wine", "coffee", "a<b>&c", "Zebra", "ünï", `q"uote`, "\u2028", "deli", ""} {
		m[c] = Rhythm{PurchaseDays: i + 1, First: Day(20000 + i), Last: 20100, HasInterval: i%2 == 0, MeanInterval: float64(i) / 3, ExpectedNext: Day(20200 * (i % 2))}
		names = append(names, c)
	}
	var h History
	for i, c := range names {
		h.Days = append(h.Days, Day(20000+i))
		h.Spend = append(h.Spend, 100)
		h.Cats = append(h.Cats, []string{c})
	}
	var rh rhythms
	cs := rh.categories(h)
	for i := 1; i < len(cs); i++ {
		if cs[i-1].Category >= cs[i].Category {
			t.Fatalf("not sorted: %q before %q", cs[i-1].Category, cs[i].Category)
		}
	}
	for c := range m {
		m[c] = func() Rhythm { r, _ := cs.Get(c); return r }()
	}
	want, err := json.Marshal(struct {
		C map[string]Rhythm `json:"c,omitempty"`
	}{m})
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(struct {
		C CategoryRhythms `json:"c,omitempty"`
	}{cs})
	if err != nil || string(got) != string(want) {
		t.Fatalf("got %s (%v)\nwant %s", got, err, want)
	}
	var back struct {
		C CategoryRhythms `json:"c"`
	}
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(struct {
		C CategoryRhythms `json:"c,omitempty"`
	}{back.C})
	if string(again) != string(got) {
		t.Fatalf("round trip %s, want %s", again, got)
	}
	if r, ok := cs.Get("wine"); !ok || r.PurchaseDays != 1 {
		t.Errorf("Get(wine) = %+v, %v", r, ok)
	}
	if _, ok := cs.Get("tea"); ok {
		t.Error("Get(tea) found")
	}
	// No categories: left out, as an empty map was.
	if b, _ := json.Marshal(struct {
		C CategoryRhythms `json:"c,omitempty"`
	}{}); string(b) != "{}" {
		t.Errorf("empty: %s", b)
	}
}

// TestManyCategories: past linearCats a member's categories are found
// through the map, with the same result as a fresh count.
func TestManyCategories(t *testing.T) {
	var rh rhythms
	for _, n := range []int{3, 40, 5, 17, 16} {
		var h History
		want := map[string][]Day{}
		for d := range 3 * n {
			var cats []string
			for k := range 1 + d%3 {
				c := string(rune('A' + (d*7+k*13)%n))
				if !strings.Contains(strings.Join(cats, ","), c) {
					cats = append(cats, c)
				}
			}
			h.Days = append(h.Days, Day(100+d))
			h.Spend = append(h.Spend, 1)
			h.Cats = append(h.Cats, cats)
			for _, c := range cats {
				want[c] = append(want[c], Day(100+d))
			}
		}
		cs := rh.categories(h)
		if len(cs) != len(want) {
			t.Fatalf("n=%d: %d categories, want %d", n, len(cs), len(want))
		}
		for c, days := range want {
			if r, ok := cs.Get(c); !ok || !reflect.DeepEqual(r, RhythmOf(days)) {
				t.Fatalf("n=%d %s: %+v, want %+v", n, c, r, RhythmOf(days))
			}
		}
	}
}
