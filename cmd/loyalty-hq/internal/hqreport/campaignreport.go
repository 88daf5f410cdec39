package hqreport

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/sync/hq/contactlog"
)

// campaignFlags are the flags that choose what a campaign measures.
type campaignFlags struct {
	log  string
	days int
	kind string
}

func (f *campaignFlags) register(fs *flag.FlagSet, logUsage, daysName string) {
	fs.StringVar(&f.log, "log", "", logUsage)
	fs.IntVar(&f.days, daysName, 30, "days after each contact to look for a purchase")
	fs.StringVar(&f.kind, "kind", "", "only this kind of contact (default every kind)")
}

// check validates the flags before any file is read.
func (f *campaignFlags) check() (retention.ContactKind, error) {
	if f.days < 1 {
		return "", fmt.Errorf("%w: campaign window of %d days: at least 1", ErrUsage, f.days)
	}
	if f.kind == "" {
		return "", nil
	}
	k, err := retention.ParseContactKind(f.kind)
	if err != nil {
		return "", fmt.Errorf("%w: --kind: %v", ErrUsage, err)
	}
	return k, nil
}

// measureLog measures the contacts recorded in the log at path against the
// purchases of a. A missing log is an error (never an empty campaign).
func measureLog(a *retention.Analysis, path string, days int, kind retention.ContactKind) (*retention.Campaign, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	store, err := contactlog.Open(path, nil)
	if err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	defer store.Close()
	var recs []retention.ContactRecord
	if err := store.Each(func(r contactlog.Record) error { recs = append(recs, r.ContactRecord); return nil }); err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	c, err := a.MeasureCampaign(recs, days, kind)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return c, nil
}

// addCampaign measures the contact log for the report (report --log) and
// projects the measured uplift onto the data's own uplift sum.
func (r *Report) addCampaign(a *retention.Analysis, f campaignFlags) error {
	k, err := f.check()
	if err != nil {
		return err
	}
	c, err := measureLog(a, f.log, f.days, k)
	if err != nil {
		return err
	}
	r.Campaign = c
	m, err := c.Project(r.Metrics.UpliftFromData(0))
	if err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	r.Measured = &m
	return nil
}

// campaignView is what the HTML report's campaign section shows.
type campaignView struct {
	What, RateDiff, SpendDiff, Verdict string
	Days, NotYet                       int
	Groups                             []campaignGroup
	// The measured uplift (empty Share without one).
	Conclusive                                                          bool
	Share, ShareLoPct, ShareHiPct, Uplift, Lo, Hi, UpliftPct, Repeaters string
}

type campaignGroup struct {
	Name, Rate, Spend, PerMember string
	Members, Returned, Purchases int
}

func (r *Report) campaignView() *campaignView {
	c := r.Campaign
	if c == nil {
		return nil
	}
	v := &campaignView{What: "every kind", Days: c.Days, NotYet: c.NotYet, Verdict: c.Verdict,
		RateDiff: fmt.Sprintf("%+.1f points (95%% %+.1f to %+.1f)", 100*c.RateDiff, 100*c.RateDiffLo, 100*c.RateDiffHi)}
	if c.Kind != "" {
		v.What = string(c.Kind)
	}
	if c.Contacted.Members > 0 && c.HeldOut.Members > 0 {
		v.SpendDiff = fmt.Sprintf("%s (95%% bootstrap %s to %s)", money(retention.Money(math.Round(c.SpendDiff))),
			money(retention.Money(math.Round(c.SpendDiffLo))), money(retention.Money(math.Round(c.SpendDiffHi))))
	} else {
		v.SpendDiff = "no comparison (a group is empty)"
	}
	for _, g := range []struct {
		name string
		o    retention.GroupOutcome
	}{{"contacted", c.Contacted}, {"held out", c.HeldOut}} {
		v.Groups = append(v.Groups, campaignGroup{Name: g.name, Members: g.o.Members, Returned: g.o.Returned, Purchases: g.o.Purchases,
			Rate:      fmt.Sprintf("%.1f%% (95%% %.1f-%.1f%%)", 100*g.o.Rate, 100*g.o.RateLo, 100*g.o.RateHi),
			Spend:     money(g.o.Spend),
			PerMember: money(retention.Money(math.Round(g.o.SpendPerMember)))})
	}
	if m := r.Measured; m != nil {
		v.Conclusive = m.Conclusive
		v.Share, v.ShareLoPct, v.ShareHiPct = bp(m.ShareBP), bp(m.ShareLoBP), bp(m.ShareHiBP)
		v.Uplift, v.Lo, v.Hi, v.UpliftPct = money(m.Uplift.ExtraRevenue), money(m.Lo.ExtraRevenue), money(m.Hi.ExtraRevenue), bp(m.Uplift.GrowthBP)
		v.Repeaters = fmt.Sprint(r.Metrics.Repeaters)
	}
	return v
}

// runUpliftFromCampaign is `report uplift --from-campaign`: the share is
// the return-rate difference measured in the contact log; customers,
// purchases and basket come from the flags when all three are given, else
// from the data (repeat buyers, their yearly purchase days, the returning
// basket, growth against the last 12 months' revenue).
func runUpliftFromCampaign(ctx context.Context, env Env, in inputFlags, cf campaignFlags, given retention.UpliftInput, stdout io.Writer, format string) error {
	k, err := cf.check()
	if err != nil {
		return err
	}
	if cf.log == "" {
		return fmt.Errorf("%w: report uplift --from-campaign needs --log FILE (the contact log with its control group)", ErrUsage)
	}
	ms, asOf, cfg, err := in.load(env)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	a, err := retention.Analyze(ms, asOf, cfg)
	if err != nil {
		return fmt.Errorf("uplift: %w", err)
	}
	c, err := measureLog(a, cf.log, cf.days, k)
	if err != nil {
		return err
	}
	sum := given
	fromData := given.Customers == 0
	if fromData {
		sum = a.Metrics().UpliftFromData(0)
		if sum.Customers < 1 || sum.PurchasesPerYear < 1 || sum.PerPurchase < 1 {
			return fmt.Errorf("%w: the data give no repeat buyers to project onto (%d repeat buyers, %d purchases a year, basket %s): give --customers, --purchases and --basket",
				retention.ErrNoData, sum.Customers, sum.PurchasesPerYear, money(sum.PerPurchase))
		}
	}
	sum.ExtraPurchases = given.ExtraPurchases
	m, err := c.Project(sum)
	if err != nil {
		return fmt.Errorf("uplift: %w", err)
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		return enc.Encode(struct {
			Input    retention.UpliftInput    `json:"input"`
			Campaign *retention.Campaign      `json:"campaign"`
			Measured retention.MeasuredUplift `json:"measured"`
		}{sum, c, m})
	}
	what := "every kind"
	if c.Kind != "" {
		what = string(c.Kind)
	}
	fmt.Fprintf(stdout, "measured (%s, %d days after each contact): %d contacted, %d held out; return rate %+.1f points (95%% %+.1f to %+.1f)\n",
		what, c.Days, c.Contacted.Members, c.HeldOut.Members, 100*c.RateDiff, 100*c.RateDiffLo, 100*c.RateDiffHi)
	fmt.Fprintf(stdout, "  %s\n", c.Verdict)
	base := "customers x purchases x basket"
	if fromData {
		base = fmt.Sprintf("the last 12 months' revenue; %d repeat buyers, %d purchase days a year, basket %s, from the data", sum.Customers, sum.PurchasesPerYear, money(sum.PerPurchase))
	}
	fmt.Fprintf(stdout, "revenue today %s a year (%s); if %s of %d customers buy %d more time(s) a year: +%s a year (+%s); at the interval's ends (%s to %s): +%s to +%s\n",
		money(m.Uplift.BaseRevenue), base, bp(m.ShareBP), sum.Customers, sum.ExtraPurchases, money(m.Uplift.ExtraRevenue), bp(m.Uplift.GrowthBP),
		bp(m.ShareLoBP), bp(m.ShareHiBP), money(m.Lo.ExtraRevenue), money(m.Hi.ExtraRevenue))
	if !m.Conclusive {
		fmt.Fprintln(stdout, "  not established: the campaign does not show an effect yet, so this is no forecast")
	}
	return nil
}

// upliftFromCampaignFlags checks the flags of `report uplift
// --from-campaign` and runs it.
func upliftFromCampaignFlags(ctx context.Context, env Env, fs *flag.FlagSet, in retention.UpliftInput, basket string, data inputFlags, camp campaignFlags, format string, stdout io.Writer) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["share-bp"] {
		return fmt.Errorf("%w: --from-campaign measures the share; leave out --share-bp", ErrUsage)
	}
	if format != "text" && format != "json" {
		return fmt.Errorf("%w: --format %q: text or json", ErrUsage, format)
	}
	n := 0
	for _, f := range []string{"customers", "purchases", "basket"} {
		if set[f] {
			n++
		}
	}
	switch n {
	case 0:
	case 3:
		if in.Customers < 1 || in.PurchasesPerYear < 1 {
			return fmt.Errorf("%w: --customers and --purchases at least 1", ErrUsage)
		}
		b, err := retention.ParseMoney(basket)
		if err != nil || b <= 0 {
			return fmt.Errorf("%w: --basket %q: a positive amount in currency units", ErrUsage, basket)
		}
		in.PerPurchase = b
	default:
		return fmt.Errorf("%w: give all of --customers, --purchases and --basket, or none (then they come from the data)", ErrUsage)
	}
	return runUpliftFromCampaign(ctx, env, data, camp, in, stdout, format)
}
