package hqreport_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqreport"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/sync/hq/contactlog"
)

// campaignFiles writes a purchases CSV and a contact log of n members who
// bought on 2026-01-05 and were contacted on 2026-02-01 (every tenth held
// out); a held-out member comes back within 30 days with probability base,
// a contacted one with base+uplift. The analysis date is 2026-03-15.
func campaignFiles(t *testing.T, n int, base, uplift float64) (purchases, log string) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 13))
	var b strings.Builder
	b.WriteString("member_id,sale_id,at,amount\n")
	log = filepath.Join(dir, "contacts.db")
	store, err := contactlog.Open(log, nil)
	if err != nil {
		t.Fatal(err)
	}
	contacted := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("m%05d", i)
		fmt.Fprintf(&b, "%s,%sa,2026-01-05,20.00\n", id, id)
		held := i%10 == 0
		p := base
		if !held {
			p += uplift
		}
		if rng.Float64() < p {
			fmt.Fprintf(&b, "%s,%sb,%s,25.00\n", id, id, contacted.AddDate(0, 0, 1+rng.IntN(30)).Format("2006-01-02"))
		}
		if _, err := store.Mark(contactlog.Record{ContactRecord: retention.ContactRecord{MemberID: id, Kind: retention.ContactFirstTime, At: contacted, Channel: "sms", HeldOut: held}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "purchases.csv", b.String()), log
}

// TestReportShowsCampaign (issue 13 item 2): with --log the HTML report,
// the JSON export and the terminal summary carry the campaign result and
// the uplift projected from the measured difference; without it they do
// not.
func TestReportShowsCampaign(t *testing.T) {
	purchases, log := campaignFiles(t, 2000, 0.25, 0.20)
	out, _, err := run(t, "report", "campaign", "--csv", purchases, "--log", log, "--as-of", "2026-03-15", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var c retention.Campaign
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	if c.HeldOut.Members != 200 || c.Contacted.Members != 1800 || !(c.RateDiffLo > 0.1) || !(c.RateDiffLo <= 0.2 && 0.2 <= c.RateDiffHi) {
		t.Fatalf("campaign %+v: want 200 held out, 1800 contacted, +20 points inside a positive interval", c)
	}
	share := int64(math.Round(10000 * c.RateDiff))

	dir := t.TempDir()
	out, _, err = run(t, "report", "--csv", purchases, "--as-of", "2026-03-15", "--log", log, "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Campaign (all kinds): purchases in the 30 days after each contact") || !strings.Contains(out, c.Verdict) {
		t.Errorf("terminal summary lacks the campaign:\n%s", out)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<h2>Did the contacts work?</h2>`,
		`data-group="contacted" data-members="1800" data-returned="` + fmt.Sprint(c.Contacted.Returned) + `"`,
		`data-group="held out" data-members="200" data-returned="` + fmt.Sprint(c.HeldOut.Returned) + `"`,
		strings.ReplaceAll(fmt.Sprintf("return rate %+.1f points (95%% %+.1f to %+.1f)", 100*c.RateDiff, 100*c.RateDiffLo, 100*c.RateDiffHi), "+", "&#43;"), // as html/template escapes it
		"contacting brought members back",
		fmt.Sprintf("Measured uplift: if %d.%02d%% of the", share/100, share%100),
	} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	js, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Report struct {
			Campaign *retention.Campaign       `json:"campaign"`
			Measured *retention.MeasuredUplift `json:"uplift_measured"`
		} `json:"report"`
	}
	if err := json.Unmarshal(js, &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.Report.Campaign == nil || parsed.Report.Campaign.RateDiff != c.RateDiff || parsed.Report.Measured == nil || parsed.Report.Measured.ShareBP != share || !parsed.Report.Measured.Conclusive {
		t.Errorf("report.json campaign %+v measured %+v, want the campaign's and share %d bp", parsed.Report.Campaign, parsed.Report.Measured, share)
	}

	dir2 := t.TempDir()
	out, _, err = run(t, "report", "--csv", purchases, "--as-of", "2026-03-15", "--out", dir2)
	if err != nil {
		t.Fatal(err)
	}
	html, _ = os.ReadFile(filepath.Join(dir2, "report.html"))
	js, _ = os.ReadFile(filepath.Join(dir2, "report.json"))
	if strings.Contains(out, "Campaign (") || strings.Contains(string(html), "Did the contacts work?") || strings.Contains(string(js), `"campaign"`) || len(html) == 0 {
		t.Errorf("a report without --log shows a campaign (or none was written):\n%s", out)
	}
	for _, bad := range [][]string{
		{"--log", filepath.Join(dir, "missing.db")},
		{"--log", log, "--campaign-days", "0"},
		{"--log", log, "--kind", "spam"},
	} {
		dir3 := t.TempDir()
		args := append([]string{"report", "--csv", purchases, "--as-of", "2026-03-15", "--out", dir3}, bad...)
		if _, _, err := run(t, args...); err == nil {
			t.Errorf("%v: no error", bad)
		}
		if _, err := os.Stat(filepath.Join(dir3, "report.html")); err == nil {
			t.Errorf("%v: a report was written", bad)
		}
	}
}

// TestUpliftFromCampaign (issue 13 item 2): the uplift calculator takes
// the measured return-rate difference as its share, with the rest from
// the data or from the flags, and says plainly when the measurement does
// not establish an effect.
func TestUpliftFromCampaign(t *testing.T) {
	purchases, log := campaignFiles(t, 2000, 0.25, 0.20)
	out, _, err := run(t, "report", "campaign", "--csv", purchases, "--log", log, "--as-of", "2026-03-15", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var c retention.Campaign
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	share := int64(math.Round(10000 * c.RateDiff))
	lo, hi := int64(math.Round(10000*c.RateDiffLo)), int64(math.Round(10000*c.RateDiffHi))

	// Customers, purchases and basket given: the source documents' sum with the measured share.
	out, _, err = run(t, "report", "uplift", "--from-campaign", "--csv", purchases, "--log", log, "--as-of", "2026-03-15",
		"--customers", "150", "--purchases", "4", "--basket", "20000")
	if err != nil {
		t.Fatal(err)
	}
	extra := func(bp int64) string {
		v := (150*bp*2000000 + 5000) / 10000
		return fmt.Sprintf("%d.%02d", v/100, v%100)
	}
	for _, want := range []string{
		"measured (every kind, 30 days after each contact): 1800 contacted, 200 held out",
		"contacting brought members back",
		"revenue today 12000000.00 a year (customers x purchases x basket)",
		fmt.Sprintf("if %d.%02d%% of 150 customers buy 1 more time(s) a year: +%s a year", share/100, share%100, extra(share)),
		fmt.Sprintf("+%s to +%s", extra(lo), extra(hi)),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("uplift output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("report uplift --from-campaign:\n%s", out)
	if strings.Contains(out, "not established") {
		t.Errorf("a conclusive campaign called not established:\n%s", out)
	}

	// From the data: the repeat buyers and their basket, against the last 12 months' revenue.
	out, _, err = run(t, "report", "uplift", "--from-campaign", "--csv", purchases, "--log", log, "--as-of", "2026-03-15", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Input    retention.UpliftInput    `json:"input"`
		Measured retention.MeasuredUplift `json:"measured"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	repeaters := int64(c.Contacted.Returned + c.HeldOut.Returned)
	in := got.Input
	in.ShareBP = share
	want, _ := retention.ComputeUplift(in)
	if in.Customers != repeaters || in.PerPurchase != 2500 || in.BaseRevenue <= 0 || got.Measured.ShareBP != share || got.Measured.Uplift != want || !got.Measured.Conclusive {
		t.Errorf("from the data: input %+v measured %+v; want %d repeat buyers, basket 25.00, share %d bp, uplift %+v", got.Input, got.Measured, repeaters, share, want)
	}

	// No effect in a small campaign: the figure comes with the verdict and "not established".
	smallP, smallLog := campaignFiles(t, 100, 0.25, 0)
	out, _, err = run(t, "report", "uplift", "--from-campaign", "--csv", smallP, "--log", smallLog, "--as-of", "2026-03-15")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "too small to tell") || !strings.Contains(out, "not established") {
		t.Errorf("small campaign:\n%s", out)
	}

	for _, bad := range [][]string{
		{"--from-campaign", "--csv", purchases},                                     // no log
		{"--from-campaign", "--csv", purchases, "--log", log, "--share-bp", "1500"}, // share is measured
		{"--from-campaign", "--csv", purchases, "--log", log, "--customers", "150"}, // all three or none
		{"--from-campaign", "--csv", purchases, "--log", log, "--format", "xml"},
		{"--from-campaign", "--csv", purchases, "--log", log, "--days", "0"},
		{"--customers", "150", "--purchases", "4", "--basket", "20000", "--share-bp", "1500", "--log", log}, // log without --from-campaign
	} {
		if out, _, err := run(t, append([]string{"report", "uplift"}, bad...)...); !errors.Is(err, hqreport.ErrUsage) || out != "" {
			t.Errorf("%v: %q %v, want a usage error and no output", bad, out, err)
		}
	}
	if out, _, err := run(t, "report", "uplift", "--from-campaign", "--csv", purchases, "--log", filepath.Join(t.TempDir(), "missing.db")); err == nil || out != "" {
		t.Errorf("missing log: %q %v", out, err)
	}
}

// TestReportCampaignWithAnEmptyGroup: right after the first contacts, with
// one group empty, report campaign prints and encodes, and report --log
// writes report.json (the spend interval was infinite: the text printed
// "--92233720368547758.-8" and every JSON output failed with "json:
// unsupported value: -Inf").
func TestReportCampaignWithAnEmptyGroup(t *testing.T) {
	purchases, log := campaignFiles(t, 1, 0.25, 0.20) // one member, held out: no one contacted
	out, _, err := run(t, "report", "campaign", "--csv", purchases, "--log", log, "--as-of", "2026-03-15")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "spend per member no comparison (a group is empty)") || strings.Contains(out, "--9") {
		t.Errorf("campaign text with an empty group:\n%s", out)
	}
	out, _, err = run(t, "report", "campaign", "--csv", purchases, "--log", log, "--as-of", "2026-03-15", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var c retention.Campaign
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.HeldOut.Members != 1 || c.Contacted.Members != 0 {
		t.Fatalf("campaign JSON %q: %v", out, err)
	}
	dir := t.TempDir()
	if _, _, err := run(t, "report", "--csv", purchases, "--as-of", "2026-03-15", "--log", log, "--out", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.json")); err != nil {
		t.Fatal(err)
	}
}
