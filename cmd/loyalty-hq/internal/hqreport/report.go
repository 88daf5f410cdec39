package hqreport

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"runtime"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/loyalty-terminal/loyalty/ledger/export"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/ledger/retention/bgnbd"
)

// Report is everything one report run shows, in the shape the JSON export
// carries.
type Report struct {
	AsOf       string                 `json:"as_of"`
	Sleeping   string                 `json:"sleeping_rule"`
	Model      *bgnbd.Fit             `json:"model,omitempty"`
	ModelError string                 `json:"model_error,omitempty"`
	Rejected   *bgnbd.Fit             `json:"rejected_model,omitempty"`
	RuleNote   string                 `json:"rule_note,omitempty"`
	Excluded   retention.Exclusions   `json:"excluded"`
	Metrics    retention.Metrics      `json:"metrics"`
	ValueRisk  []retention.MatrixCell `json:"value_risk"`
	Uplift     retention.Uplift       `json:"uplift_if_15pct_buy_once_more"`
	Members    []retention.Profile    `json:"-"` // streamed by WriteJSON
	// Campaign is the contact log's campaign (report --log): contacted
	// against held out. Measured projects its return-rate difference onto
	// the data's uplift sum. Both nil without a log.
	Campaign *retention.Campaign       `json:"campaign,omitempty"`
	Measured *retention.MeasuredUplift `json:"uplift_measured,omitempty"`
	// AsOfPast is set when the analysis date lies before today: purchases
	// after it are later history, not a register clock running ahead.
	AsOfPast bool `json:"as_of_in_past,omitempty"`
	// AfterToday counts purchase entries dated after today: those are a
	// register clock running ahead, whatever the analysis date.
	AfterToday int `json:"after_today,omitempty"`
}

// setToday fills AsOfPast and AfterToday from the members and today's date.
func (r *Report) setToday(ms []retention.Member, asOf retention.Day, today time.Time, loc *time.Location) {
	t := retention.DayOf(today, loc)
	r.AsOfPast = asOf < t
	for _, m := range ms {
		for _, p := range m.Purchases {
			if retention.DayOf(p.At, loc) > t {
				r.AfterToday++
			}
		}
	}
}

// excludedLine describes the excluded entries.
func (r *Report) excludedLine() string {
	e := r.Excluded
	after := "future-dated (register clock)"
	if r.AsOfPast {
		after = "after the as-of date (later history, not analysed)"
		if r.AfterToday > 0 {
			after += fmt.Sprintf(" [%d of them dated after today: a register clock running ahead]", r.AfterToday)
		}
	}
	untrusted := ""
	if e.Untrusted > 0 {
		untrusted = fmt.Sprintf("stamped by an untrusted register clock, not corrected %d, ", e.Untrusted)
	}
	return fmt.Sprintf("%s%s %d, before enrolment %d, zero amount %d, refund without sale %d, fully refunded %d; members without purchases %d",
		untrusted, after, e.Future, e.BeforeEnrolment, e.ZeroAmount, e.OrphanRefund, e.Refunded, e.NoPurchases)
}

// BuildReport assembles the report of an analysis.
func BuildReport(a *retention.Analysis) *Report {
	m := a.Metrics()
	r := &Report{AsOf: a.AsOfDate, Sleeping: a.Sleeping.String(), ModelError: a.ModelError, Excluded: a.Excluded,
		Metrics: m, ValueRisk: a.ValueRisk(), Members: a.Profiles}
	r.Model, r.Rejected, r.RuleNote = a.Model, a.Rejected, a.RuleNote
	r.Uplift, _ = retention.ComputeUplift(m.UpliftFromData(1500))
	return r
}

func money(v retention.Money) string { return string(appendMoney(nil, v)) }

// appendMoney appends v in major units with two decimals ("-12.05").
func appendMoney(b []byte, v retention.Money) []byte {
	if v == math.MinInt64 { // no positive counterpart: as fmt wrote it
		return fmt.Appendf(b, "-%d.%02d", v/100, v%100)
	}
	if v < 0 {
		v = -v
		b = append(b, '-')
	}
	b = appendInt(b, int64(v/100))
	c := v % 100
	return append(b, '.', byte('0'+c/10), byte('0'+c%10))
}

func pct(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }

// WriteText prints the terminal summary.
func (r *Report) WriteText(w io.Writer) error {
	m := r.Metrics
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("Retention report as of %s", r.AsOf)
	p("")
	p("members\t%d\tbuyers %d, repeat buyers %d", m.Members, m.Buyers, m.Repeaters)
	p("repeat-customer ratio\t%s", pct(m.RepeatRatio))
	p("revenue\t%s", money(m.Revenue))
	p("average basket, pooled\tnew %s\treturning %s (every first and every later purchase day)", money(m.AvgBasketNew), money(m.AvgBasketReturning))
	if m.Repeaters > 0 {
		p("  same customers\tfirst %s\tlater %s (repeat buyers' own average); %s spent less on their first visit", money(m.RepeatFirstBasket), money(m.RepeatLaterBasket), pct(m.RepeatFirstSmaller))
	}
	p("time between purchases\ttypical customer %.0f days\t(median of each repeat buyer's own mean interval); all gaps pooled %.0f days", m.MemberIntervalDays, m.MedianIntervalDays)
	p("top %s of customers\tbring %s of revenue", pct(m.TopShare), pct(m.TopRevenueShare))
	p("sleeping rule\t%s", r.Sleeping)
	switch {
	case r.Model != nil:
		f := r.Model
		p("BG/NBD fit\tr=%.4f alpha=%.4f a=%.4f b=%.4f LL=%.1f", f.R, f.Alpha, f.A, f.B, f.LogLik)
		for _, b := range f.AtBound {
			p("  fit note\t%s", b)
		}
	case r.Rejected != nil:
		f := r.Rejected
		p("BG/NBD fit\tnot used: %s (r=%.4f alpha=%.4f a=%.4g b=%.4g LL=%.1f)", r.ModelError, f.R, f.Alpha, f.A, f.B, f.LogLik)
	default:
		p("BG/NBD fit\tnone: %s", r.ModelError)
	}
	if r.RuleNote != "" {
		p("  rule note\t%s", r.RuleNote)
	}
	if n := r.Excluded.Total(); n > 0 || r.Excluded.NoPurchases > 0 {
		p("excluded entries\t%d\t%s", n, r.excludedLine())
	}
	p("")
	p("segment\tmembers")
	for _, s := range []retention.Segment{retention.SegNew, retention.SegSecond, retention.SegRegular, retention.SegVIP} {
		p("  %s\t%d", s, m.Segments[string(s)])
	}
	p("status\tmembers")
	for _, s := range []retention.Status{retention.StatusActive, retention.StatusDue, retention.StatusSleeping, retention.StatusLost} {
		p("  %s\t%d", s, m.Statuses[string(s)])
	}
	p("")
	p("value x risk\tactive\tdue\tsleeping\tlost")
	for _, v := range []string{"high", "mid", "low"} {
		row := "  " + v
		for _, c := range r.ValueRisk {
			if c.Value == v {
				row += fmt.Sprintf("\t%d", c.Members)
			}
		}
		p("%s", row)
	}
	p("")
	p("uplift\tif 15%% of the %d repeat buyers buy once more a year: +%s (+%s of the last 12 months' revenue, %s)", m.Repeaters, money(r.Uplift.ExtraRevenue), bp(r.Uplift.GrowthBP), money(m.RevenueLast12Months))
	return tw.Flush()
}

// WriteJSON writes the JSON export: {"report": {...}, "members": [...]}
// with one member per line. Members are streamed rather than indented as
// one value, which on a million purchases is the difference between
// seconds and tens of seconds.
func (r *Report) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	head, err := json.MarshalIndent(r, " ", " ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	bw.WriteString("{\n \"report\": ")
	bw.Write(head)
	bw.WriteString(",\n \"members\": [")
	procs := runtime.GOMAXPROCS(0)
	caches := make([]floatCache, procs)
	err = writeInChunks(bw, len(r.Members), procs, func(k int, b []byte, lo, hi int) ([]byte, error) {
		for i := lo; i < hi; i++ {
			b = roomy(b)
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n  "...)
			var ok bool
			if b, ok = appendProfile(b, &r.Members[i], &caches[k]); !ok {
				if _, err := json.Marshal(&r.Members[i]); err != nil {
					return b, fmt.Errorf("json: member %s: %w", r.Members[i].MemberID, err)
				}
				return b, fmt.Errorf("json: member %s: not encoded", r.Members[i].MemberID)
			}
		}
		return b, nil
	})
	if err != nil {
		return err
	}
	bw.WriteString("\n ]\n}\n")
	return bw.Flush()
}

// MembersCSVHeader is the header of the per-member CSV export.
var MembersCSVHeader = []string{"member_id", "consent", "segment", "status", "value", "purchase_days", "first", "last",
	"mean_interval_days", "median_interval_days", "expected_next", "days_since_last", "spend", "p_alive", "p_no_purchase", "expected_purchases"}

// WriteMembersCSV writes one line per member, as encoding/csv writes the
// cells export.SafeRow makes of them (TestMembersCSVMatchesEncodingCSV),
// with the row built in one buffer rather than cell by cell.
func (r *Report) WriteMembersCSV(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var row []byte
	for i, h := range MembersCSVHeader {
		if i > 0 {
			row = append(row, ',')
		}
		row = appendCSVField(row, h)
	}
	row = append(row, '\n')
	if _, err := bw.Write(row); err != nil {
		return err
	}
	procs := runtime.GOMAXPROCS(0)
	caches := make([]floatCache, procs)
	err := writeInChunks(bw, len(r.Members), procs, func(k int, b []byte, lo, hi int) ([]byte, error) {
		num := make([]byte, 0, 64) // each number is formatted here first
		for i := lo; i < hi; i++ {
			b = appendMemberCSV(roomy(b), num, &r.Members[i], &caches[k])
		}
		return b, nil
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// appendMemberCSV appends p's row of the members CSV; num is scratch
// space for the numbers, fc (may be nil) remembers the intervals' text.
func appendMemberCSV(row, num []byte, p *retention.Profile, fc *floatCache) []byte {
	row = appendCSVCell(row, p.MemberID)
	row = append(row, ',')
	row = strconv.AppendBool(row, p.Consent)
	row = append(row, ',')
	row = appendCSVCell(row, string(p.Segment))
	row = append(row, ',')
	row = appendCSVCell(row, string(p.Status))
	row = append(row, ',')
	row = appendCSVCell(row, p.Value)
	row = append(row, ',')
	row = appendCSVNumber(row, appendInt(num[:0], int64(p.Rhythm.PurchaseDays)))
	row = append(row, ',')
	if p.Rhythm.PurchaseDays > 0 {
		row = appendCSVNumber(row, fc.appendDay(num[:0], p.Rhythm.First))
		row = append(row, ',')
		row = appendCSVNumber(row, fc.appendDay(num[:0], p.Rhythm.Last))
	} else {
		row = append(row, ',')
	}
	for _, v := range []float64{p.Rhythm.MeanInterval, p.Rhythm.MedianInterval} {
		row = append(row, ',')
		row = appendCSVNumber(row, fc.appendFloat(num[:0], v, appendFixed4))
	}
	row = append(row, ',')
	if p.Rhythm.HasInterval {
		row = appendCSVNumber(row, fc.appendDay(num[:0], p.Rhythm.ExpectedNext))
	}
	row = append(row, ',')
	row = appendCSVNumber(row, appendInt(num[:0], int64(p.DaysSince)))
	row = append(row, ',')
	row = appendCSVNumber(row, appendMoney(num[:0], p.Spend))
	for _, v := range []float64{p.PAlive, p.PNone, p.Expected} {
		row = append(row, ',')
		row = appendCSVNumber(row, appendFixed4(num[:0], v))
	}
	return append(row, '\n')
}

// appendFixed4 appends f with four decimals, as strconv.AppendFloat(b, f,
// 'f', 4, 64) does (TestAppendFixed4, FuzzAppendFixed4). strconv takes its
// arbitrary-precision path for a fixed number of decimals; the members CSV
// writes five such numbers a member. A finite f in [+0, 1e9) is rounded
// here exactly: f*10^4 as a 128-bit product of the mantissa, shifted, with
// ties to even as strconv rounds them.
func appendFixed4(b []byte, f float64) []byte {
	if !(f >= 0 && f < 1e9) || math.Signbit(f) {
		return strconv.AppendFloat(b, f, 'f', 4, 64)
	}
	n := fixed4(f)
	b = appendInt(b, int64(n/10000)) // n < 10^13
	d := n % 10000
	return append(b, '.', byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
}

// fixed4 is f*10^4 rounded to the nearest integer, ties to even, for a
// finite f in [0, 1e9).
func fixed4(f float64) uint64 {
	fb := math.Float64bits(f)
	mant, exp := fb&(1<<52-1), int(fb>>52)
	if exp == 0 {
		exp = 1 // subnormal
	} else {
		mant |= 1 << 52
	}
	// f = mant * 2^(exp-1075); f < 1e9 < 2^30, so the shift s is above 22.
	s := uint(1075 - exp)
	hi, lo := bits.Mul64(mant, 10000)
	if s >= 68 {
		return 0 // mant*10^4 < 2^67 <= half of 2^s: below one half
	}
	// q = (hi:lo) >> s; r = the bits shifted out, against half = 2^(s-1).
	var q, r, rhi uint64
	if s >= 64 {
		q = hi >> (s - 64)
		rhi, r = hi&(1<<(s-64)-1), lo
	} else {
		q = lo>>s | hi<<(64-s)
		rhi, r = 0, lo&(1<<s-1)
	}
	var halfHi, halfLo uint64
	if s-1 >= 64 {
		halfHi = 1 << (s - 1 - 64)
	} else {
		halfLo = 1 << (s - 1)
	}
	switch {
	case rhi > halfHi || rhi == halfHi && r > halfLo:
		q++
	case rhi == halfHi && r == halfLo && q&1 == 1:
		q++
	}
	return q
}

// appendCSVNumber appends a formatted number as a cell: as it is when it
// starts with a digit, which neither SafeCell nor the quoting touch.
func appendCSVNumber(row, num []byte) []byte {
	if len(num) > 0 && num[0] >= '0' && num[0] <= '9' {
		return append(row, num...)
	}
	return appendCSVCell(row, string(num))
}

// appendCSVCell appends export.SafeCell of s as a cell. A cell of
// printable ASCII without quotes or commas that starts with none of
// SafeCell's characters or a space (ids, segments, statuses: four a
// member) is that text itself, written without the two passes.
func appendCSVCell(row []byte, s string) []byte {
	if len(s) > 0 && csvPlainStart[s[0]] && s != `\.` {
		i := 1
		for i < len(s) && csvPlain[s[i]] {
			i++
		}
		if i == len(s) {
			return append(row, s...)
		}
	}
	return appendCSVField(row, export.SafeCell(s))
}

// csvPlain marks the bytes a cell may hold as they are: printable ASCII
// except '"' and ','; csvPlainStart those a cell may also start with:
// not a space, nor '=', '+', '-' or '@' (export.SafeCell's).
var csvPlain, csvPlainStart = func() (plain, start [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		plain[c] = c != '"' && c != ','
		start[c] = plain[c] && c != ' ' && c != '=' && c != '+' && c != '-' && c != '@'
	}
	return plain, start
}()

// appendCSVField appends s as encoding/csv's Writer (comma, LF) writes a
// field.
func appendCSVField(row []byte, s string) []byte {
	if !csvNeedsQuotes(s) {
		return append(row, s...)
	}
	row = append(row, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			row = append(row, '"')
		}
		row = append(row, s[i])
	}
	return append(row, '"')
}

// csvNeedsQuotes is encoding/csv's rule for a comma-separated cell.
func csvNeedsQuotes(s string) bool {
	if s == "" {
		return false
	}
	if s == `\.` {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\n' || c == '\r' || c == '"' || c == ',' {
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// segmentCounts returns segment names and sizes in display order.
func (r *Report) segmentCounts() ([]string, []float64) {
	names := []string{"new", "second", "regular", "vip", "active", "due", "sleeping", "lost"}
	var vals []float64
	for _, n := range names[:4] {
		vals = append(vals, float64(r.Metrics.Segments[n]))
	}
	for _, n := range names[4:] {
		vals = append(vals, float64(r.Metrics.Statuses[n]))
	}
	return names, vals
}
