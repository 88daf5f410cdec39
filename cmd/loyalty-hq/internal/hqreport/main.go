package hqreport

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/source"
)

// ErrUsage reports bad command-line arguments; the message says what to type.
var ErrUsage = errors.New("usage")

// ErrRefused reports a well-formed request the data refuse (a contact for
// an unknown member, or on a channel without consent); nothing is recorded.
var ErrRefused = errors.New("refused")

// Env is what the caller provides besides the arguments. Zero fields mean:
// no head-office store (then --cdnow or --csv is required) and the system
// clock for the default --as-of.
type Env struct {
	Source  source.PurchaseSource // head office's store (sync/hq/hqstore)
	Members source.MemberSource   // its member records (consent, birthdays)
	Now     func() time.Time      // only for the default --as-of
}

// Main runs `report ...` or `contacts ...` (args[0] names the subcommand)
// without a head-office store.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return Run(ctx, Env{}, args, stdout, stderr)
}

const usage = `usage:
  report [input] [--as-of YYYY-MM-DD] [--out DIR] [--html F] [--json F] [--members-csv F] [--log F [--campaign-days 30] [--kind KIND]] [analysis flags]
  report eval --cdnow F [--cal-end 1997-09-30] [--holdout-days 273] [--json F] [--doc docs/retention-eval.md [--measured F.json] [--check]]
  report campaign [input] --log F [--days 30] [--kind KIND] [--as-of D] [--format text|json]
  report uplift --customers N --purchases N --basket AMOUNT --share-bp BP [--extra N]
  report uplift --from-campaign [input] --log F [--days 30] [--kind KIND] [--as-of D] [--customers N --purchases N --basket AMOUNT] [--extra N] [--format text|json]
  contacts list [input] --log F [--as-of D] [--kinds due,sleeping,win-back,...] [--cap 3] [--min-gap 7] [--birthday-days 7] [--channels sms,email,...]
                [--holdout 0.1] [--holdout-seed control] [--format csv|json] [--mark]
  contacts mark --log F --member ID --kind KIND --channel sms|email|phone|in-store [--at YYYY-MM-DD] [--operator NAME] [--members F [--consents F]]
  contacts log --log F [--member ID] [--format csv|json]
input: -store FILE (head office's bbolt store, serve stopped) | -config FILE (serve's config: its live store) | --cdnow F | --csv F [--members F [--consents F]];
  with -store or -config, --history F adds purchases from before the registers
analysis flags: --sleeping pnone:0.5:273:3|pnone:0.5:273|intervals:3|fixed:42|palive:0.5 --due-offset DAYS --vip-share 0.1 --tz Europe/Sofia`

// Run is Main with the environment (head office passes its store here).
func Run(ctx context.Context, env Env, args []string, stdout, stderr io.Writer) error {
	if env.Now == nil {
		env.Now = time.Now
	}
	err := run(ctx, env, args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return err
}

func run(ctx context.Context, env Env, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no subcommand\n%s", ErrUsage, usage)
	}
	switch args[0] {
	case "report":
		if len(args) > 1 && args[1] == "eval" {
			return runEval(ctx, args[2:], stdout)
		}
		if len(args) > 1 && args[1] == "uplift" {
			return runUplift(ctx, env, args[2:], stdout)
		}
		if len(args) > 1 && args[1] == "campaign" {
			return runCampaign(ctx, env, args[2:], stdout)
		}
		return runReport(ctx, env, args[1:], stdout, stderr)
	case "contacts":
		if len(args) > 1 && args[1] == "mark" {
			return runMark(env, args[2:], stdout)
		}
		if len(args) > 1 && args[1] == "list" {
			return runContacts(ctx, env, args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "log" {
			return runLog(args[2:], stdout)
		}
		if len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "-help") {
			return flag.ErrHelp
		}
		return fmt.Errorf("%w: contacts needs list, mark or log\n%s", ErrUsage, usage)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown subcommand %q\n%s", ErrUsage, args[0], usage)
}

// inputFlags are the flags shared by every command that reads purchases.
type inputFlags struct {
	cdnow, csv, history, members, consents, asOf, sleeping, tz string
	dueOffset                                                  int
	vipShare                                                   float64
}

func (f *inputFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cdnow, "cdnow", "", "CDNOW-format purchases file")
	fs.StringVar(&f.csv, "csv", "", "purchases CSV (member_id,sale_id,at,amount[,categories])")
	fs.StringVar(&f.history, "history", "", "purchases CSV of history from before the registers (original dates), added to head office's store")
	fs.StringVar(&f.members, "members", "", "members CSV (member_id,consent[,name,email,phone,birthday,enrolled_at]); consent yes/no or channels sms;email;phone;in-store")
	fs.StringVar(&f.consents, "consents", "", "consent events CSV (member_id,channel,consent,at[,how]); needs --members")
	fs.StringVar(&f.asOf, "as-of", "", "analysis date YYYY-MM-DD (default: today; for --cdnow: 1998-06-30, the end of the data)")
	fs.StringVar(&f.sleeping, "sleeping", "", "sleeping rule, default "+ruleFlag(retention.DefaultSleepRule))
	fs.StringVar(&f.tz, "tz", "UTC", "store time zone for calendar days")
	fs.IntVar(&f.dueOffset, "due-offset", 0, "days after (positive) or before (negative) the own interval a member is due")
	fs.Float64Var(&f.vipShare, "vip-share", 0.1, "share of buyers by spend that are high-value (VIPs when they bought on two or more days)")
}

func ruleFlag(r retention.SleepRule) string {
	switch r.Kind {
	case retention.SleepPNone:
		if r.Intervals > 0 {
			return fmt.Sprintf("pnone:%g:%d:%g", r.Threshold, r.WindowDays, r.Intervals)
		}
		return fmt.Sprintf("pnone:%g:%d", r.Threshold, r.WindowDays)
	case retention.SleepPAlive:
		return fmt.Sprintf("palive:%g", r.Threshold)
	case retention.SleepIntervals:
		return fmt.Sprintf("intervals:%g", r.Intervals)
	case retention.SleepFixed:
		return fmt.Sprintf("fixed:%d", r.FixedDays)
	}
	return string(r.Kind)
}

// parseRule parses "kind[:a[:b]]".
func parseRule(s string) (retention.SleepRule, error) {
	if s == "" {
		return retention.SleepRule{}, nil
	}
	parts := strings.Split(s, ":")
	r := retention.SleepRule{Kind: retention.SleepKind(parts[0])}
	num := func(i int) (float64, error) {
		if len(parts) <= i {
			return 0, nil
		}
		return strconv.ParseFloat(parts[i], 64)
	}
	a, err1 := num(1)
	b, err2 := num(2)
	c, err3 := num(3)
	if err1 != nil || err2 != nil || err3 != nil || len(parts) > 4 || len(parts) > 3 && r.Kind != retention.SleepPNone {
		return r, fmt.Errorf("%w: --sleeping %q", ErrUsage, s)
	}
	switch r.Kind {
	case retention.SleepPNone:
		r.Threshold, r.WindowDays, r.Intervals = a, int(b), c
	case retention.SleepPAlive:
		r.Threshold = a
	case retention.SleepIntervals:
		r.Intervals = a
	case retention.SleepFixed:
		r.FixedDays = int(a)
	default:
		return r, fmt.Errorf("%w: --sleeping kind %q (pnone, palive, intervals, fixed)", ErrUsage, parts[0])
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("%w: --sleeping %q: %v", ErrUsage, s, err)
	}
	return r, nil
}

// load reads the members and builds the analysis config and date.
func (f *inputFlags) load(env Env) ([]retention.Member, time.Time, *retention.Config, error) {
	loc, err := time.LoadLocation(f.tz)
	if err != nil {
		return nil, time.Time{}, nil, fmt.Errorf("%w: --tz %q: %v", ErrUsage, f.tz, err)
	}
	rule, err := parseRule(f.sleeping)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	cfg := &retention.Config{Location: loc, Sleeping: rule, DueOffsetDays: f.dueOffset, VIPShare: f.vipShare}
	var ms []retention.Member
	asOfDefault := env.Now()
	switch {
	case f.cdnow != "" && f.csv != "":
		return nil, time.Time{}, nil, fmt.Errorf("%w: give --cdnow or --csv, not both", ErrUsage)
	case f.cdnow != "":
		ms, err = readFile(f.cdnow, retention.ParseCDNOW)
		cfg.KeepZeroAmount = true                                  // CDNOW's 0.00 orders are free CDs, real orders
		asOfDefault = time.Date(1998, 6, 30, 0, 0, 0, 0, time.UTC) // the end of the CDNOW sample
	case f.csv != "":
		ms, err = readFile(f.csv, retention.ParsePurchasesCSV)
	case env.Source != nil:
		ms, err = source.Collect(env.Source, env.Members)
	default:
		return nil, time.Time{}, nil, fmt.Errorf("%w: no input: give --cdnow FILE or --csv FILE\n%s", ErrUsage, usage)
	}
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	if f.history != "" {
		if env.Source == nil || f.cdnow != "" || f.csv != "" {
			return nil, time.Time{}, nil, fmt.Errorf("%w: --history adds to head office's store; with --csv put the history in the same file", ErrUsage)
		}
		if ms, err = mergeHistory(f.history, ms); err != nil {
			return nil, time.Time{}, nil, err
		}
	}
	if f.members != "" {
		fh, err := os.Open(f.members)
		if err != nil {
			return nil, time.Time{}, nil, fmt.Errorf("members: %w", err)
		}
		ms, err = retention.ParseMembersCSV(fh, ms)
		fh.Close()
		if err != nil {
			return nil, time.Time{}, nil, err
		}
		if f.consents != "" {
			if ms, err = readConsents(f.consents, ms); err != nil {
				return nil, time.Time{}, nil, err
			}
		}
	} else if f.consents != "" {
		return nil, time.Time{}, nil, fmt.Errorf("%w: --consents needs --members", ErrUsage)
	}
	asOf := asOfDefault
	if f.asOf != "" {
		if asOf, err = time.ParseInLocation("2006-01-02", f.asOf, loc); err != nil {
			return nil, time.Time{}, nil, fmt.Errorf("%w: --as-of %q: want YYYY-MM-DD", ErrUsage, f.asOf)
		}
	}
	return ms, asOf, cfg, nil
}

// mergeHistory adds the purchases of a history CSV to ms. A sale id
// already in the store for the member is an error: history must not count
// a sale twice.
func mergeHistory(path string, ms []retention.Member) ([]retention.Member, error) {
	hist, err := readFile(path, retention.ParsePurchasesCSV)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	idx := map[string]int{}
	for i := range ms {
		idx[ms[i].ID] = i
	}
	for _, h := range hist {
		i, ok := idx[h.ID]
		if !ok {
			idx[h.ID] = len(ms)
			ms = append(ms, h)
			continue
		}
		seen := map[string]bool{}
		for _, p := range ms[i].Purchases {
			seen[p.SaleID] = true
		}
		for _, p := range h.Purchases {
			if p.SaleID != "" && seen[p.SaleID] && p.Amount > 0 {
				return nil, fmt.Errorf("%w: history: member %s sale %s is already in head office's store", retention.ErrInvalid, h.ID, p.SaleID)
			}
		}
		ms[i].Purchases = append(ms[i].Purchases, h.Purchases...)
		// The history comes from before the registers (an older system):
		// the member was a customer since their first purchase there, not
		// since enrolling at a register, so those purchases are not "before
		// enrolment".
		if first, ok := earliest(h.Purchases); ok && !ms[i].EnrolledAt.IsZero() && first.Before(ms[i].EnrolledAt) {
			ms[i].EnrolledAt = first
		}
	}
	return ms, nil
}

// earliest is the time of the earliest purchase in ps.
func earliest(ps []retention.Purchase) (time.Time, bool) {
	var t time.Time
	for _, p := range ps {
		if t.IsZero() || p.At.Before(t) {
			t = p.At
		}
	}
	return t, !t.IsZero()
}

func readConsents(path string, ms []retention.Member) ([]retention.Member, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("consents: %w", err)
	}
	defer fh.Close()
	return retention.ParseConsentsCSV(fh, ms)
}

func readFile(path string, parse func(io.Reader) ([]retention.Member, error)) ([]retention.Member, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read purchases: %w", err)
	}
	defer fh.Close()
	return parse(fh)
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %s: %v\n%s", ErrUsage, fs.Name(), err, usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q\n%s", ErrUsage, fs.Name(), fs.Arg(0), usage)
	}
	return nil
}

func runReport(ctx context.Context, env Env, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report")
	var in inputFlags
	in.register(fs)
	outDir := fs.String("out", "", "directory for report.html, report.json and members.csv")
	htmlPath := fs.String("html", "", "write the HTML report here")
	jsonPath := fs.String("json", "", "write the JSON export here")
	csvPath := fs.String("members-csv", "", "write the per-member CSV export here")
	var camp campaignFlags
	camp.register(fs, "contact log file: adds the campaign result (contacted against held out) to the report", "campaign-days")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := camp.check(); err != nil {
		return err
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
		return fmt.Errorf("report: %w", err)
	}
	rep := BuildReport(a)
	rep.setToday(ms, a.AsOf, env.Now(), cfg.Location)
	if camp.log != "" {
		if err := rep.addCampaign(a, camp); err != nil {
			return err
		}
	}
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if rep.Campaign != nil {
		if err := WriteCampaign(stdout, rep.Campaign); err != nil {
			return err
		}
	}
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o750); err != nil { // personal data: not for every user
			return fmt.Errorf("report: %w", err)
		}
		set := func(p *string, name string) {
			if *p == "" {
				*p = *outDir + "/" + name
			}
		}
		set(htmlPath, "report.html")
		set(jsonPath, "report.json")
		set(csvPath, "members.csv")
	}
	for _, w := range []struct {
		path  string
		write func(io.Writer) error
	}{{*htmlPath, rep.WriteHTML}, {*jsonPath, rep.WriteJSON}, {*csvPath, rep.WriteMembersCSV}} {
		if w.path == "" {
			continue
		}
		if err := writeFileAtomic(w.path, w.write); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s\n", w.path)
	}
	return nil
}

// writeFileAtomic writes through a temporary file, syncs it and renames
// it (durable.WriteFile), so a failed run or a power cut never leaves half
// a report, or an empty one, where the old one was.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	return durable.WriteFile(path, 0o600, write)
}

func runUplift(ctx context.Context, env Env, args []string, stdout io.Writer) error {
	fs := newFlagSet("report uplift")
	var in retention.UpliftInput
	var basket string
	fs.Int64Var(&in.Customers, "customers", 0, "active customers")
	fs.Int64Var(&in.PurchasesPerYear, "purchases", 0, "purchases per customer per year today")
	fs.StringVar(&basket, "basket", "", "average purchase in currency units (e.g. 20000 or 42.01)")
	fs.Int64Var(&in.ShareBP, "share-bp", 0, "share of customers buying more, basis points (1500 = 15%)")
	fs.Int64Var(&in.ExtraPurchases, "extra", 1, "extra purchases a year for those customers")
	fromCampaign := fs.Bool("from-campaign", false, "take the share from the campaign measured in --log (return rate of contacted minus held out)")
	format := fs.String("format", "text", "text or json (with --from-campaign)")
	var data inputFlags
	data.register(fs)
	var camp campaignFlags
	camp.register(fs, "contact log file (with --from-campaign)", "days")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if in.ExtraPurchases < 1 {
		return fmt.Errorf("%w: --extra %d: at least 1 extra purchase a year", ErrUsage, in.ExtraPurchases)
	}
	if *fromCampaign {
		return upliftFromCampaignFlags(ctx, env, fs, in, basket, data, camp, *format, stdout)
	}
	if camp.log != "" || *format != "text" {
		return fmt.Errorf("%w: --log and --format belong with --from-campaign", ErrUsage)
	}
	if in.Customers < 1 || in.PurchasesPerYear < 1 || in.ShareBP < 1 || in.ShareBP > 10000 {
		return fmt.Errorf("%w: report uplift needs --customers, --purchases (at least 1) and --share-bp (1..10000)", ErrUsage)
	}
	b, err := retention.ParseMoney(basket)
	if err != nil || b <= 0 {
		return fmt.Errorf("%w: --basket %q: a positive amount in currency units", ErrUsage, basket)
	}
	in.PerPurchase = b
	u, err := retention.ComputeUplift(in)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revenue today %s a year; if %s of %d customers buy %d more time(s) a year: +%s a year (+%s)\n",
		money(u.BaseRevenue), bp(in.ShareBP), in.Customers, in.ExtraPurchases, money(u.ExtraRevenue), bp(u.GrowthBP))
	return nil
}

func bp(v int64) string { return fmt.Sprintf("%d.%02d%%", v/100, v%100) }
