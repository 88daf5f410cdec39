package hqreport

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/loyalty-terminal/loyalty/ledger/export"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/source"
	"github.com/loyalty-terminal/loyalty/sync/hq/contactlog"
)

func runContacts(ctx context.Context, env Env, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("contacts list")
	var in inputFlags
	in.register(fs)
	logPath := fs.String("log", "", "contact log file (bbolt); required")
	kinds := fs.String("kinds", "", "comma-separated kinds (birthday,first-time,followup,due,sleeping,win-back); default all but win-back")
	capN := fs.Int("cap", 3, "budget of contacts per member per lapse episode, across kinds (birthdays aside)")
	gap := fs.Int("min-gap", 7, "days between two contacts of any kind")
	bday := fs.Int("birthday-days", 7, "birthdays this many days ahead")
	channels := fs.String("channels", strings.Join(retention.Channels, ","), "channels in order of preference; members are contacted on the first they consented to")
	format := fs.String("format", "csv", "csv or json")
	holdout := fs.Float64("holdout", retention.DefaultHoldoutShare, "share of contacts held out as a control group (not listed, recorded as held out); 0 for none")
	seed := fs.String("holdout-seed", "control", "seed of the reproducible control-group draw")
	mark := fs.Bool("mark", false, "record every listed contact (with its channel) as made on --as-of, and the held-out ones as held out")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logPath == "" {
		return fmt.Errorf("%w: contacts list needs --log FILE (where contacts are recorded, so caps hold across runs)", ErrUsage)
	}
	if in.members == "" && (in.csv != "" || in.cdnow != "" || env.Members == nil) {
		return fmt.Errorf("%w: contacts list needs --members FILE: consent comes from the members file, and without it nobody may be contacted", ErrUsage)
	}
	if *format != "csv" && *format != "json" {
		return fmt.Errorf("%w: --format %q: csv or json", ErrUsage, *format)
	}
	if *holdout < 0 || *holdout >= 1 {
		return fmt.Errorf("%w: --holdout %g: a share from 0 to below 1", ErrUsage, *holdout)
	}
	share := *holdout
	if share == 0 {
		share = -1 // none
	}
	opts := &retention.ContactOptions{MaxPerLapse: *capN, MinGapDays: *gap, BirthdayDaysAhead: *bday, HoldoutShare: share, HoldoutSeed: *seed}
	for _, c := range strings.Split(*channels, ",") {
		if c = strings.TrimSpace(c); c != "" {
			opts.Channels = append(opts.Channels, c)
		}
	}
	if *kinds != "" {
		for _, k := range strings.Split(*kinds, ",") {
			kk, err := retention.ParseContactKind(strings.TrimSpace(k))
			if err != nil {
				return fmt.Errorf("%w: --kinds: %v", ErrUsage, err)
			}
			opts.Kinds = append(opts.Kinds, kk)
		}
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	ms, asOf, cfg, err := in.load(env)
	if err != nil {
		return err
	}
	a, err := retention.Analyze(ms, asOf, cfg)
	if err != nil {
		return fmt.Errorf("contacts: %w", err)
	}
	store, err := contactlog.Open(*logPath, nil)
	if err != nil {
		return fmt.Errorf("contacts: %w", err)
	}
	defer store.Close()
	if err := ctx.Err(); err != nil {
		return err
	}
	if last, ok, err := store.LastRunBefore(asOf); err != nil {
		return fmt.Errorf("contacts: %w", err)
	} else if ok {
		opts.LastRun = last
	}
	all, err := a.ContactList(store, opts)
	if err != nil {
		return fmt.Errorf("contacts: %w", err)
	}
	var list, held []retention.Contact
	for _, c := range all {
		if c.HeldOut {
			held = append(held, c)
		} else {
			list = append(list, c)
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		if list == nil {
			list = []retention.Contact{}
		}
		if err := enc.Encode(list); err != nil {
			return err
		}
	} else if err := writeContactsCSV(stdout, list); err != nil {
		return err
	}
	if len(held) > 0 {
		fmt.Fprintf(stderr, "held out %d of %d contacts as the control group (not listed%s)\n", len(held), len(all), map[bool]string{true: "; recorded as held out", false: ""}[*mark])
	}
	if *mark {
		n := 0
		for _, c := range all {
			added, err := store.Mark(contactlog.Record{ContactRecord: retention.ContactRecord{MemberID: c.MemberID, Kind: c.Kind, At: asOf, Channel: c.Channel, HeldOut: c.HeldOut}, Operator: "contacts list --mark"})
			if err != nil {
				return fmt.Errorf("contacts: %w", err)
			}
			if added && !c.HeldOut {
				n++
			}
		}
		if err := store.MarkRun(asOf); err != nil {
			return fmt.Errorf("contacts: %w", err)
		}
		fmt.Fprintf(stderr, "recorded %d contacts as made on %s\n", n, asOf.Format("2006-01-02"))
	}
	if a.RuleNote != "" {
		fmt.Fprintf(stderr, "note: %s\n", a.RuleNote)
	}
	if len(list) == 0 {
		fmt.Fprintf(stderr, "no contacts: %s\n", emptyReason(a, opts))
	}
	if a.Excluded.Total() > 0 {
		rep := &Report{Excluded: a.Excluded}
		rep.setToday(ms, a.AsOf, env.Now(), a.Config.Location)
		fmt.Fprintf(stderr, "excluded %d purchase entries: %s\n", a.Excluded.Total(), rep.excludedLine())
	}
	return nil
}

// emptyReason says why a contact list is empty.
func emptyReason(a *retention.Analysis, o *retention.ContactOptions) string {
	consent := 0
	for _, p := range a.Profiles {
		if p.Consent {
			consent++
		}
	}
	switch {
	case consent == 0:
		return fmt.Sprintf("none of the %d members has consent recorded on any channel as of %s", len(a.Profiles), a.AsOfDate)
	default:
		return fmt.Sprintf("%d of %d members have consent; none is due a contact under the policy (spacing %d days, budget %d per lapse, kinds %v)",
			consent, len(a.Profiles), o.MinGapDays, o.MaxPerLapse, o.Kinds)
	}
}

// ContactsCSVHeader is the header of the contact list CSV.
var ContactsCSVHeader = []string{"member_id", "name", "kind", "attempt", "channel", "address", "last_purchase", "segment", "value", "reason", "risk"}

func writeContactsCSV(w io.Writer, list []retention.Contact) error {
	cw := csv.NewWriter(w)
	cw.Write(ContactsCSVHeader)
	for _, c := range list {
		cw.Write(export.SafeRow([]string{c.MemberID, c.Name, string(c.Kind), strconv.Itoa(c.Attempt), c.Channel, c.Address, c.LastBought, string(c.Segment), c.Value, c.Reason, strconv.FormatFloat(c.Risk, 'f', 4, 64)}))
	}
	cw.Flush()
	return cw.Error()
}

// runLog prints the contact log.
func runLog(args []string, stdout io.Writer) error {
	fs := newFlagSet("contacts log")
	logPath := fs.String("log", "", "contact log file; required")
	member := fs.String("member", "", "only this member")
	format := fs.String("format", "csv", "csv or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logPath == "" {
		return fmt.Errorf("%w: contacts log needs --log FILE", ErrUsage)
	}
	if *format != "csv" && *format != "json" {
		return fmt.Errorf("%w: --format %q: csv or json", ErrUsage, *format)
	}
	if _, err := os.Stat(*logPath); err != nil {
		return fmt.Errorf("contacts log: %w", err)
	}
	store, err := contactlog.Open(*logPath, nil)
	if err != nil {
		return fmt.Errorf("contacts log: %w", err)
	}
	defer store.Close()
	var recs []contactlog.Record
	if err := store.Each(func(r contactlog.Record) error {
		if *member == "" || r.MemberID == *member {
			recs = append(recs, r)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("contacts log: %w", err)
	}
	if *format == "json" {
		if recs == nil {
			recs = []contactlog.Record{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		return enc.Encode(recs)
	}
	cw := csv.NewWriter(stdout)
	cw.Write([]string{"member_id", "day", "kind", "channel", "held_out", "operator"})
	for _, r := range recs {
		cw.Write(export.SafeRow([]string{r.MemberID, r.At.Format("2006-01-02"), string(r.Kind), r.Channel, strconv.FormatBool(r.HeldOut), r.Operator}))
	}
	cw.Flush()
	return cw.Error()
}

// memberFor finds one member with their consent: in the members file
// (and consent events) when given, else in head office's member records.
func memberFor(env Env, membersPath, consentsPath, id string) (retention.Member, bool, error) {
	var ms []retention.Member
	switch {
	case membersPath != "":
		fh, err := os.Open(membersPath)
		if err != nil {
			return retention.Member{}, false, fmt.Errorf("members: %w", err)
		}
		ms, err = retention.ParseMembersCSV(fh, nil)
		fh.Close()
		if err != nil {
			return retention.Member{}, false, err
		}
		if consentsPath != "" {
			if ms, err = readConsents(consentsPath, ms); err != nil {
				return retention.Member{}, false, err
			}
		}
	case env.Members != nil:
		err := env.Members.EachMember(func(m ledger.Member) error {
			if m.ID == id {
				ms = append(ms, source.Member(m, nil))
			}
			return nil
		})
		if err != nil {
			return retention.Member{}, false, fmt.Errorf("members: %w", err)
		}
	default:
		return retention.Member{}, false, fmt.Errorf("%w: contacts mark needs --members FILE (or head office's store) to check the member and their consent", ErrUsage)
	}
	for _, m := range ms {
		if m.ID == id {
			return m, true, nil
		}
	}
	return retention.Member{}, false, nil
}

func runMark(env Env, args []string, stdout io.Writer) error {
	fs := newFlagSet("contacts mark")
	logPath := fs.String("log", "", "contact log file; required")
	member := fs.String("member", "", "member id; required")
	kind := fs.String("kind", "", "due, sleeping, birthday, followup or first-time; required")
	at := fs.String("at", "", "day of the contact YYYY-MM-DD (default today)")
	channel := fs.String("channel", "", "sms, email, phone or in-store; required")
	operator := fs.String("operator", "", "who made the contact")
	members := fs.String("members", "", "members CSV, to check the member and their consent (default: head office's store)")
	consents := fs.String("consents", "", "consent events CSV (member_id,channel,consent,at,how)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *logPath == "" || *member == "" || *kind == "" || *channel == "" {
		return fmt.Errorf("%w: contacts mark needs --log, --member, --kind and --channel", ErrUsage)
	}
	if !retention.ValidChannel(*channel) {
		return fmt.Errorf("%w: --channel %q: want one of %v", ErrUsage, *channel, retention.Channels)
	}
	k, err := retention.ParseContactKind(*kind)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	when := env.Now()
	if *at != "" {
		if when, err = time.Parse("2006-01-02", *at); err != nil {
			return fmt.Errorf("%w: --at %q: want YYYY-MM-DD", ErrUsage, *at)
		}
	}
	m, ok, err := memberFor(env, *members, *consents, *member)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: contacts mark: unknown member %q: nothing recorded", ErrRefused, *member)
	}
	consented := false
	for _, c := range m.ChannelsAt(when.Add(24*time.Hour - time.Nanosecond)) {
		consented = consented || c.Channel == *channel
	}
	if !consented {
		return fmt.Errorf("%w: contacts mark: member %s has no consent on %s as of %s: nothing recorded", ErrRefused, *member, *channel, when.Format("2006-01-02"))
	}
	store, err := contactlog.Open(*logPath, nil)
	if err != nil {
		return fmt.Errorf("contacts mark: %w", err)
	}
	defer store.Close()
	added, err := store.Mark(contactlog.Record{ContactRecord: retention.ContactRecord{MemberID: *member, Kind: k, At: when, Channel: *channel}, Operator: *operator})
	if err != nil {
		return fmt.Errorf("contacts mark: %w", err)
	}
	if added {
		fmt.Fprintf(stdout, "recorded %s contact with %s by %s on %s\n", k, *member, *channel, when.Format("2006-01-02"))
	} else {
		fmt.Fprintf(stdout, "already recorded: %s contact with %s by %s on %s\n", k, *member, *channel, when.Format("2006-01-02"))
	}
	return nil
}

// MarkRequest is the body of a POST to MarkHandler.
type MarkRequest struct {
	MemberID string `json:"member_id"`
	Kind     string `json:"kind"`
	At       string `json:"at,omitempty"` // YYYY-MM-DD or RFC 3339; default now
	Channel  string `json:"channel,omitempty"`
	Operator string `json:"operator,omitempty"`
}

// MarkHandler is the HTTP endpoint head office's API mounts to record a
// contact: POST a MarkRequest as JSON (channel required); 201 when
// recorded, 200 when it was already (same member, kind, day and channel),
// 400 for a bad request (nothing stored). now gives the default time. It
// does not check consent: it records what was done; `contacts mark`
// checks.
func MarkHandler(store *contactlog.Store, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST a JSON contact record", http.StatusMethodNotAllowed)
			return
		}
		var req MarkRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "bad json: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.Channel == "" {
			http.Error(w, "channel: want one of "+strings.Join(retention.Channels, ", "), http.StatusBadRequest)
			return
		}
		when := now()
		if req.At != "" {
			var err error
			if when, err = time.Parse(time.RFC3339, req.At); err != nil {
				if when, err = time.Parse("2006-01-02", req.At); err != nil {
					http.Error(w, "at: want YYYY-MM-DD or RFC 3339", http.StatusBadRequest)
					return
				}
			}
		}
		added, err := store.Mark(contactlog.Record{ContactRecord: retention.ContactRecord{MemberID: req.MemberID, Kind: retention.ContactKind(req.Kind), At: when, Channel: req.Channel}, Operator: req.Operator})
		switch {
		case errors.Is(err, contactlog.ErrInvalid):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if added {
			w.WriteHeader(http.StatusCreated)
		}
		json.NewEncoder(w).Encode(map[string]bool{"recorded": added})
	})
}

// runCampaign measures contacted against held-out members.
func runCampaign(ctx context.Context, env Env, args []string, stdout io.Writer) error {
	fs := newFlagSet("report campaign")
	var in inputFlags
	in.register(fs)
	var camp campaignFlags
	camp.register(fs, "contact log file; required", "days")
	format := fs.String("format", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if camp.log == "" {
		return fmt.Errorf("%w: report campaign needs --log FILE", ErrUsage)
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("%w: --format %q: text or json", ErrUsage, *format)
	}
	k, err := camp.check()
	if err != nil {
		return err
	}
	if _, err := os.Stat(camp.log); err != nil {
		return fmt.Errorf("campaign: %w", err)
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
		return fmt.Errorf("campaign: %w", err)
	}
	c, err := measureLog(a, camp.log, camp.days, k)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", " ")
		return enc.Encode(c)
	}
	return WriteCampaign(stdout, c)
}

// WriteCampaign prints a campaign measurement.
func WriteCampaign(w io.Writer, c *retention.Campaign) error {
	what := "all kinds"
	if c.Kind != "" {
		what = string(c.Kind)
	}
	fmt.Fprintf(w, "Campaign (%s): purchases in the %d days after each contact\n", what, c.Days)
	for _, g := range []struct {
		name string
		o    retention.GroupOutcome
	}{{"contacted", c.Contacted}, {"held out", c.HeldOut}} {
		fmt.Fprintf(w, "  %-9s  %5d members  returned %5d = %5.1f%% (95%% %.1f-%.1f%%)  purchase days %d  spend %s (%s per member)\n",
			g.name, g.o.Members, g.o.Returned, 100*g.o.Rate, 100*g.o.RateLo, 100*g.o.RateHi, g.o.Purchases, money(g.o.Spend), money(retention.Money(math.Round(g.o.SpendPerMember))))
	}
	spend := "no comparison (a group is empty)"
	if c.Contacted.Members > 0 && c.HeldOut.Members > 0 {
		spend = fmt.Sprintf("%s (95%% bootstrap %s to %s)", money(retention.Money(math.Round(c.SpendDiff))), money(retention.Money(math.Round(c.SpendDiffLo))), money(retention.Money(math.Round(c.SpendDiffHi))))
	}
	fmt.Fprintf(w, "  difference: return rate %+.1f points (95%% %+.1f to %+.1f); spend per member %s\n",
		100*c.RateDiff, 100*c.RateDiffLo, 100*c.RateDiffHi, spend)
	if c.NotYet > 0 {
		fmt.Fprintf(w, "  not yet measurable: %d contacts whose %d days have not passed\n", c.NotYet, c.Days)
	}
	_, err := fmt.Fprintf(w, "  %s\n", c.Verdict)
	return err
}
