package retention_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
	"github.com/loyalty-terminal/loyalty/ledger/retention/retentiontest"
)

// weeklyAsOf are the 26 Mondays up to the end of the generated data.
func weeklyAsOf() []time.Time {
	var out []time.Time
	for w := 25; w >= 0; w-- {
		out = append(out, retentiontest.End.AddDate(0, 0, -7*w))
	}
	return out
}

// TestGeneratedFitAndStoppers runs the analysis at 26 weekly dates on the
// generated chain (issue 19, item 1): the fit always ends at a maximum
// (never ErrNoConvergence), a fit that cannot be used is reported with the
// rule used instead, every member who stopped is flagged sleeping (or lost)
// by four of their own intervals, and nobody flagged sleeping is unflagged
// the next week without buying again.
func TestGeneratedFitAndStoppers(t *testing.T) {
	d := retentiontest.Generate(1)
	ms := d.Members()
	prevAsleep := map[string]retention.Day{}
	used := 0
	for _, asOf := range weeklyAsOf() {
		a, err := retention.Analyze(ms, asOf, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case a.Model != nil:
			used++
			if a.RuleNote != "" || a.Sleeping != retention.DefaultSleepRule {
				t.Errorf("%s: model used but rule %q note %q", a.AsOfDate, a.Sleeping, a.RuleNote)
			}
		case strings.Contains(a.ModelError, bgnbd.ErrNoConvergence.Error()):
			t.Errorf("%s: fit did not converge: %s", a.AsOfDate, a.ModelError)
		default:
			if a.Rejected == nil || !strings.Contains(a.RuleNote, a.Sleeping.String()) || a.Sleeping != retention.FallbackSleepRule {
				t.Errorf("%s: no model (%s) but rejected fit %v, rule %q, note %q", a.AsOfDate, a.ModelError, a.Rejected, a.Sleeping, a.RuleNote)
			}
		}
		t.Logf("%s model %v rejected %v sleeping %d", a.AsOfDate, a.Model != nil, a.Rejected != nil, a.Metrics().Statuses["sleeping"])
		asleep := map[string]retention.Day{}
		for i := range a.Profiles {
			p := &a.Profiles[i]
			if p.Status == retention.StatusSleeping || p.Status == retention.StatusLost {
				asleep[p.MemberID] = p.Rhythm.Last
			}
			person, _ := d.Person(p.MemberID)
			if !person.Stop.IsZero() && !asOf.Before(person.Stop) && p.Rhythm.HasInterval {
				if float64(p.DaysSince) > 4*p.Rhythm.MeanInterval && asleep[p.MemberID] == 0 {
					t.Errorf("%s: %s (%s every %d days) stopped %s, absent %d days (%.1f own intervals), status %s",
						a.AsOfDate, p.MemberID, person.Rhythm, person.Interval, person.Stop.Format("2006-01-02"), p.DaysSince, float64(p.DaysSince)/p.Rhythm.MeanInterval, p.Status)
				}
			}
		}
		for id, last := range prevAsleep {
			p, _ := a.Profile(id)
			if _, still := asleep[id]; !still && p.Rhythm.Last == last {
				t.Errorf("%s: %s was sleeping last week, has not bought since, and is now %s", a.AsOfDate, id, p.Status)
			}
		}
		prevAsleep = asleep
	}
	if used < 20 {
		t.Errorf("model used at %d of 26 dates", used)
	}
}

// TestDegenerateFitFallsBack: when everybody is still buying, the fit says
// nobody drops out; the analysis reports it and uses the interval rule.
func TestDegenerateFitFallsBack(t *testing.T) {
	var ms []retention.Member
	for i := range 20 {
		m := retention.Member{ID: string(rune('a' + i))}
		// Weekly from week i to the as-of date.
		for w := i; w <= 17; w++ {
			p := buy(fmt.Sprintf("%s%d", m.ID, w), "2025-01-06", 1000)
			p.At = p.At.AddDate(0, 0, 7*w)
			m.Purchases = append(m.Purchases, p)
		}
		ms = append(ms, m)
	}
	a, err := retention.Analyze(ms, day("2025-05-05"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Model != nil || a.Rejected == nil || !strings.Contains(a.ModelError, "nobody ever drops out") {
		t.Fatalf("model %v rejected %v error %q", a.Model, a.Rejected, a.ModelError)
	}
	if a.Sleeping != retention.FallbackSleepRule || !strings.Contains(a.RuleNote, "absent > 3 x own mean interval") {
		t.Errorf("rule %q note %q", a.Sleeping, a.RuleNote)
	}
}
