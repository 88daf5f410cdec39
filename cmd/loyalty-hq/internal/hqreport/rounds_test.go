package hqreport_test

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqreport"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/retentiontest"
)

// chain writes the generated chain (seed 1) as files a marketer would
// have: purchases, members and, when consents is set, consent events.
func chain(t *testing.T, consents bool) (d *retentiontest.Data, purchases, members, consentsPath string) {
	t.Helper()
	d = retentiontest.Generate(1)
	dir := t.TempDir()
	write := func(name string, fn func(*os.File) error) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := fn(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	purchases = write("purchases.csv", func(f *os.File) error { return d.WritePurchasesCSV(f) })
	if consents {
		members = write("members.csv", func(f *os.File) error { return d.WriteMembersCSV(f) })
		consentsPath = write("consents.csv", func(f *os.File) error { return d.WriteConsentsCSV(f) })
	} else {
		members = write("members.csv", func(f *os.File) error { return d.WriteLegacyMembersCSV(f) })
	}
	return d, purchases, members, consentsPath
}

type listed struct {
	round int
	day   string
	row   map[string]string
}

func parseList(t *testing.T, out string) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("contact list %q: %v", out, err)
	}
	var rows []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		rows = append(rows, m)
	}
	return rows
}

// lastPurchase is the member's last purchase day on or before day.
func lastPurchase(p retentiontest.Person, day string) string {
	last := ""
	for _, q := range p.Member.Purchases {
		if d := q.At.Format("2006-01-02"); d <= day && d > last {
			last = d
		}
	}
	return last
}

// TestMarketerWeeklyRounds is issue 19 as a marketer runs it: six weekly
// rounds of `contacts list --mark` on the generated chain, each followed by
// a second run the same day. It checks the contact policy of
// docs/retention.md and logs the figures per round.
func TestMarketerWeeklyRounds(t *testing.T) {
	d, purchases, members, _ := chain(t, false)
	log := filepath.Join(t.TempDir(), "contacts.db")
	var all []listed
	for r, asOf := range retentiontest.Rounds {
		day := asOf.Format("2006-01-02")
		// The policy is checked on everyone: no control group here
		// (TestControlGroupRounds has it).
		args := []string{"contacts", "list", "--csv", purchases, "--members", members, "--log", log, "--as-of", day, "--mark", "--holdout", "0"}
		out, stderr, err := run(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		rows := parseList(t, out)
		// Riskiest first (the ranking model's score).
		for i := 1; i < len(rows); i++ {
			if a, b := num(rows[i-1]["risk"]), num(rows[i]["risk"]); a < b {
				t.Errorf("%s: row %d risk %s above row %d risk %s", day, i+1, rows[i]["risk"], i, rows[i-1]["risk"])
			}
		}
		seen := map[string]bool{}
		kinds := map[string]int{}
		for _, row := range rows {
			if seen[row["member_id"]] {
				t.Errorf("%s: %s listed twice", day, row["member_id"])
			}
			seen[row["member_id"]] = true
			kinds[row["kind"]]++
			all = append(all, listed{r, day, row})
		}
		// The same run again the same day after --mark: nothing new.
		again, _, err := run(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(parseList(t, again)); n != 0 {
			t.Errorf("%s: a second run after --mark listed %d contacts", day, n)
		}
		a, err := retention.Analyze(d.Members(), asOf, nil)
		if err != nil {
			t.Fatal(err)
		}
		fit := "none: " + a.ModelError
		if a.Model != nil {
			fit = fmt.Sprintf("r=%.3f alpha=%.3f a=%.3g b=%.3g LL=%.1f %v", a.Model.R, a.Model.Alpha, a.Model.A, a.Model.B, a.Model.LogLik, a.Model.AtBound)
		}
		t.Logf("round %d %s: %d contacts %v; sleeping %d due %d; fit %s; %s", r+1, day, len(rows), kinds,
			a.Metrics().Statuses["sleeping"], a.Metrics().Statuses["due"], fit, strings.TrimSpace(stderr))
	}
	// Per member: no two contacts within 7 days, at most 3 per lapse
	// episode (birthdays aside), one follow-up per purchase, each kind once
	// per episode.
	type key struct{ member, episode string }
	perEpisode := map[key][]string{}
	byMember := map[string][]listed{}
	maxPer := 0
	for _, c := range all {
		id := c.row["member_id"]
		p, _ := d.Person(id)
		if !p.Member.Consent {
			t.Errorf("%s: %s listed without consent", c.day, id)
		}
		byMember[id] = append(byMember[id], c)
		if c.row["kind"] != "birthday" {
			k := key{id, lastPurchase(p, c.day)}
			for _, prev := range perEpisode[k] {
				if prev == c.row["kind"] {
					t.Errorf("%s: %s got %s twice in one lapse", c.day, id, prev)
				}
			}
			perEpisode[k] = append(perEpisode[k], c.row["kind"])
			maxPer = max(maxPer, len(perEpisode[k]))
		}
	}
	if maxPer > 3 {
		t.Errorf("a member got %d contacts in one lapse, budget 3", maxPer)
	}
	maxMember := 0
	for id, cs := range byMember {
		maxMember = max(maxMember, len(cs))
		for i := 1; i < len(cs); i++ {
			a, _ := time.Parse("2006-01-02", cs[i-1].day)
			b, _ := time.Parse("2006-01-02", cs[i].day)
			if b.Sub(a) < 7*24*time.Hour {
				t.Errorf("%s contacted %s and %s", id, cs[i-1].day, cs[i].day)
			}
		}
	}
	// Every lapse that is sleeping at two rounds running has had its
	// sleeping offer by the second.
	reached, watched := 0, 0
	status := map[string][]retention.Profile{}
	for _, asOf := range retentiontest.Rounds {
		a, err := retention.Analyze(d.Members(), asOf, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range a.Profiles {
			status[p.MemberID] = append(status[p.MemberID], p)
		}
	}
	for id, ps := range status {
		p, _ := d.Person(id)
		if !p.Member.Consent {
			continue
		}
		for r := 1; r < len(ps); r++ {
			if ps[r-1].Status != retention.StatusSleeping || ps[r].Status != retention.StatusSleeping || ps[r-1].Rhythm.Last != ps[r].Rhythm.Last {
				continue
			}
			watched++
			ok := false
			for _, c := range byMember[id] {
				if c.row["kind"] == "sleeping" && c.round <= r && c.row["last_purchase"] == ps[r].Rhythm.LastDate() {
					ok = true
				}
			}
			if ok {
				reached++
			} else {
				t.Errorf("%s sleeping since %s (last purchase %s) got no sleeping offer by %s: %v", id, retentiontest.Rounds[r-1].Format("2006-01-02"), ps[r].Rhythm.LastDate(), retentiontest.Rounds[r].Format("2006-01-02"), byMember[id])
			}
			break
		}
	}
	// The weekly probe that stops on 2025-11-24: no follow-up (a weekly
	// shopper is back before it would help), due after a week, then the
	// sleeping offer once past three intervals (28 days), a week later
	// because the birthday greeting takes 2025-12-22.
	var p01 []string
	for _, c := range byMember["P01"] {
		p01 = append(p01, c.day+" "+c.row["kind"])
	}
	if got := strings.Join(p01, ", "); got != "2025-12-01 due, 2025-12-22 birthday, 2025-12-29 sleeping" {
		t.Errorf("P01 (weekly until 2025-11-24): %s", got)
	}
	// Follow-ups: every purchase whose window (days 5-7 after it) the
	// weekly rounds straddle, by a consenting member whose own interval
	// is over 14 days, is followed up (or greeted as a first purchase),
	// unless another contact in the 7 days before took the slot.
	first, lastRound := retentiontest.Rounds[0].AddDate(0, 0, -1), retentiontest.Rounds[len(retentiontest.Rounds)-1]
	due, got, blocked := 0, 0, 0
	for id, ps := range status {
		p, _ := d.Person(id)
		if !p.Member.Consent {
			continue
		}
		for j, q := range p.Member.Purchases {
			from, to := q.At.Truncate(24*time.Hour).AddDate(0, 0, 5), q.At.Truncate(24*time.Hour).AddDate(0, 0, 7)
			if from.After(lastRound) || !to.After(first) {
				continue
			}
			// Bought again before the round that would follow it up:
			// that purchase is the one to follow up.
			var round time.Time
			ri := 0
			for ri = range retentiontest.Rounds {
				if round = retentiontest.Rounds[ri]; !round.Before(from) {
					break
				}
			}
			if j+1 < len(p.Member.Purchases) && !p.Member.Purchases[j+1].At.Truncate(24*time.Hour).After(round) {
				continue
			}
			// Only members whose own interval then is over 14 days.
			if rh := ps[ri].Rhythm; rh.HasInterval && rh.MeanInterval <= 14 || !rh.HasInterval && rh.PurchaseDays != 1 {
				continue
			}
			pd := q.At.Format("2006-01-02")
			due++
			ok, other := false, false
			for _, c := range byMember[id] {
				if (c.row["kind"] == "followup" || c.row["kind"] == "first-time") && c.row["last_purchase"] == pd {
					ok = true
				}
				cd, _ := time.Parse("2006-01-02", c.day)
				if !cd.Before(from.AddDate(0, 0, -7)) && !cd.After(to.AddDate(0, 0, 7)) {
					other = true
				}
			}
			switch {
			case ok:
				got++
			case other:
				blocked++
			default:
				t.Errorf("%s: purchase on %s got no follow-up and no other contact near it: %v", id, pd, byMember[id])
			}
		}
	}
	t.Logf("follow-ups: %d purchases in reach, %d followed up, %d not because of another contact within 7 days", due, got, blocked)
	kinds := map[string]int{}
	for _, c := range all {
		kinds[c.row["kind"]]++
	}
	ids := make([]string, 0, len(kinds))
	for k := range kinds {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	t.Logf("six rounds: %d contacts %v; per member max %d overall, %d per lapse; sleeping lapses watched %d, reached the offer %d",
		len(all), kinds, maxMember, maxPer, watched, reached)
}

// TestMarketerDailyRuns: run every day for two weeks with --mark; nobody
// gets two contacts within 7 days, whatever the kinds.
func TestMarketerDailyRuns(t *testing.T) {
	_, purchases, members, _ := chain(t, false)
	log := filepath.Join(t.TempDir(), "contacts.db")
	lastDay := map[string]time.Time{}
	total := 0
	for i := range 14 {
		asOf := retentiontest.Rounds[0].AddDate(0, 0, i)
		out, _, err := run(t, "contacts", "list", "--csv", purchases, "--members", members, "--log", log, "--as-of", asOf.Format("2006-01-02"), "--mark", "--holdout", "0")
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range parseList(t, out) {
			id := row["member_id"]
			if prev, ok := lastDay[id]; ok && asOf.Sub(prev) < 7*24*time.Hour {
				t.Errorf("%s: %s contacted %s and %s (%s)", id, id, prev.Format("2006-01-02"), asOf.Format("2006-01-02"), row["kind"])
			}
			lastDay[id] = asOf
			total++
		}
	}
	t.Logf("14 daily runs: %d contacts to %d members", total, len(lastDay))
}

// TestConsentPerChannelRounds: six weekly rounds with consent per channel
// and withdrawals in weeks 3 and 5. Every row carries a channel the member
// consented to that day and its address, --mark records the channel, and
// `contacts log` reads it back.
func TestConsentPerChannelRounds(t *testing.T) {
	d, purchases, members, consents := chain(t, true)
	log := filepath.Join(t.TempDir(), "contacts.db")
	byChannel := map[string]int{}
	var rows int
	for _, asOf := range retentiontest.Rounds {
		day := asOf.Format("2006-01-02")
		out, _, err := run(t, "contacts", "list", "--csv", purchases, "--members", members, "--consents", consents, "--log", log, "--as-of", day, "--mark")
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range parseList(t, out) {
			rows++
			p, _ := d.Person(row["member_id"])
			ok := false
			for _, c := range p.Member.ChannelsAt(asOf.Add(24*time.Hour - 1)) {
				if c.Channel == row["channel"] && c.Address == row["address"] {
					ok = true
				}
			}
			if !ok || row["name"] != p.Member.Name {
				t.Errorf("%s: %s contacted by %s at %q (name %q) without consent there: %+v", day, p.Member.ID, row["channel"], row["address"], row["name"], p.Member.Consents)
			}
			byChannel[row["channel"]]++
		}
	}
	if rows == 0 || byChannel["sms"] == 0 || byChannel["email"] == 0 {
		t.Fatalf("rows %d by channel %v", rows, byChannel)
	}
	// Withdrawals took effect: nobody was contacted on a channel after
	// withdrawing it.
	out, _, err := run(t, "contacts", "log", "--log", log)
	if err != nil {
		t.Fatal(err)
	}
	var logRows []map[string]string
	for _, r := range parseList(t, out) {
		if r["held_out"] == "false" {
			logRows = append(logRows, r)
		}
	}
	if len(logRows) != rows {
		t.Errorf("log holds %d contacts, lists had %d", len(logRows), rows)
	}
	withdrawn := 0
	for _, r := range logRows {
		p, _ := d.Person(r["member_id"])
		for _, c := range p.Member.Consents {
			if !c.Given && c.Channel == r["channel"] && c.At.Format("2006-01-02") < r["day"] {
				t.Errorf("%s contacted by %s on %s after withdrawing it on %s", r["member_id"], r["channel"], r["day"], c.At.Format("2006-01-02"))
			}
			if !c.Given {
				withdrawn++
			}
		}
		if r["channel"] == "" {
			t.Errorf("log row without channel: %v", r)
		}
	}
	t.Logf("%d contacts over six rounds by channel %v", rows, byChannel)
}

// TestContactsMarkRefuses: contacts mark checks the member and the
// channel's consent; a refusal records nothing. A missing members file is
// an error, not an empty list.
func TestContactsMarkRefuses(t *testing.T) {
	d, purchases, members, consents := chain(t, true)
	log := filepath.Join(t.TempDir(), "contacts.db")
	var noConsent, smsOnly string
	for _, p := range d.People {
		cs := p.Member.ChannelsAt(retentiontest.End)
		if len(cs) == 0 && noConsent == "" {
			noConsent = p.Member.ID
		}
		if len(cs) == 1 && cs[0].Channel == "sms" && smsOnly == "" {
			smsOnly = p.Member.ID
		}
	}
	mark := func(member, channel string) (string, error) {
		out, _, err := run(t, "contacts", "mark", "--log", log, "--member", member, "--kind", "due", "--channel", channel, "--at", "2026-01-05", "--members", members, "--consents", consents)
		return out, err
	}
	for _, tc := range []struct{ name, member, channel string }{
		{"unknown member", "nobody", "sms"},
		{"no consent at all", noConsent, "sms"},
		{"no consent on email", smsOnly, "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mark(tc.member, tc.channel); !errors.Is(err, hqreport.ErrRefused) {
				t.Errorf("err = %v, want ErrRefused", err)
			}
		})
	}
	if _, err := mark(smsOnly, "pigeon"); !errors.Is(err, hqreport.ErrUsage) {
		t.Errorf("unknown channel: %v", err)
	}
	if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refusals touched the contact log: %v", err)
	}
	if out, err := mark(smsOnly, "sms"); err != nil || !strings.Contains(out, "recorded due contact with "+smsOnly+" by sms") {
		t.Errorf("consented mark: %q %v", out, err)
	}
	out, _, err := run(t, "contacts", "log", "--log", log, "--member", smsOnly)
	if rows := parseList(t, out); err != nil || len(rows) != 1 || rows[0]["channel"] != "sms" || rows[0]["kind"] != "due" {
		t.Errorf("contacts log: %q %v", out, err)
	}
	if _, _, err := run(t, "contacts", "list", "--csv", purchases, "--log", log, "--as-of", "2026-01-05"); !errors.Is(err, hqreport.ErrUsage) || !strings.Contains(err.Error(), "--members") {
		t.Errorf("list without --members: %v", err)
	}
}

func num(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return v
}

// TestControlGroupRounds: with the default 10% control group, held-out
// contacts are not listed, are recorded as held out, stay held out through
// their episode, and the draw is the same in a fresh log.
func TestControlGroupRounds(t *testing.T) {
	_, purchases, members, consents := chain(t, true)
	rounds := func(log string) (listed, held map[string]bool, stderr string) {
		listed, held = map[string]bool{}, map[string]bool{}
		for _, asOf := range retentiontest.Rounds {
			out, errOut, err := run(t, "contacts", "list", "--csv", purchases, "--members", members, "--consents", consents, "--log", log, "--as-of", asOf.Format("2006-01-02"), "--mark")
			if err != nil {
				t.Fatal(err)
			}
			stderr += errOut
			for _, r := range parseList(t, out) {
				listed[r["member_id"]+" "+r["kind"]] = true
			}
		}
		out, _, err := run(t, "contacts", "log", "--log", log)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range parseList(t, out) {
			if r["held_out"] == "true" {
				held[r["member_id"]+" "+r["kind"]] = true
			}
		}
		return listed, held, stderr
	}
	dir := t.TempDir()
	listed, held, stderr := rounds(filepath.Join(dir, "a.db"))
	if !strings.Contains(stderr, "as the control group") {
		t.Errorf("no control group reported: %q", stderr)
	}
	for k := range held {
		if listed[k] {
			t.Errorf("%s was held out and listed in the same episode", k)
		}
	}
	share := float64(len(held)) / float64(len(held)+len(listed))
	if share < 0.04 || share > 0.2 {
		t.Errorf("held out %d of %d (%.1f%%), want about 10%%", len(held), len(held)+len(listed), 100*share)
	}
	_, held2, _ := rounds(filepath.Join(dir, "b.db"))
	if fmt.Sprint(held) != fmt.Sprint(held2) {
		t.Errorf("the control group differs in a fresh log:\n%v\n%v", held, held2)
	}
	t.Logf("six rounds: %d contacts listed, %d held out (%.1f%%)", len(listed), len(held), 100*share)
	// The campaign report reads the log: with a few dozen held out over
	// six weeks it must say it cannot tell yet.
	out, _, err := run(t, "report", "campaign", "--csv", purchases, "--members", members, "--log", filepath.Join(dir, "a.db"), "--days", "7", "--as-of", "2026-01-05")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "held out") || !strings.Contains(out, "too small to tell") {
		t.Errorf("campaign report:\n%s", out)
	}
	t.Logf("campaign report:\n%s", out)
	if _, _, err := run(t, "report", "campaign", "--csv", purchases, "--log", filepath.Join(dir, "missing.db")); err == nil {
		t.Error("campaign on a missing log succeeded")
	}
}
