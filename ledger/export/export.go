package export

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
)

// Format is an export format.
type Format string

// The formats: JSON lines (one object per sale or member) and CSV.
const (
	JSON Format = "json"
	CSV  Format = "csv"
)

// ErrFormat means a format other than JSON or CSV was asked for.
var ErrFormat = fmt.Errorf("export: format must be %s or %s", JSON, CSV)

// ParseFormat returns the format named s; "" is JSON.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", JSON:
		return JSON, nil
	case CSV:
		return CSV, nil
	}
	return "", ErrFormat
}

// ContentType is the HTTP content type of f.
func (f Format) ContentType() string {
	if f == CSV {
		return "text/csv; charset=utf-8"
	}
	return "application/x-ndjson"
}

// table writes one kind of record: CSV with header (rows may give several
// lines per record) or JSON lines of obj(record).
func table[T any](w io.Writer, format Format, what string, header []string, each func(func(T) error) error, rows func(T) [][]string, obj func(T) any) error {
	var err error
	if format == CSV {
		cw := csv.NewWriter(w)
		if err = cw.Write(header); err == nil {
			err = each(func(v T) error {
				for _, r := range rows(v) {
					if err := cw.Write(SafeRow(r)); err != nil {
						return err
					}
				}
				return nil
			})
		}
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
	} else {
		enc := json.NewEncoder(w)
		err = each(func(v T) error { return enc.Encode(obj(v)) })
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", what, err)
	}
	return nil
}

func itoa[T ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// saleJSON is one sale in the JSON export: the sale as recorded, with the
// figures the CSV rows carry (docs/api.md): sale_total, reward_discount,
// rewards, and line_amount on every line.
type saleJSON struct {
	ledger.Sale
	Lines          []lineJSON   `json:"lines"`
	SaleTotal      ledger.Money `json:"sale_total"`
	RewardDiscount ledger.Money `json:"reward_discount"`
	Rewards        []string     `json:"rewards"`
}

type lineJSON struct {
	ledger.Line
	LineAmount ledger.Money `json:"line_amount"`
}

// rewardsOf is the discount of the rewards a sale redeemed, and their ids.
func rewardsOf(s ledger.Sale) (ledger.Money, []string) {
	var rd ledger.Money
	ids := []string{}
	for _, r := range s.Redemptions {
		rd += r.Discount
		ids = append(ids, r.RewardID)
	}
	return rd, ids
}

// Sales writes every sale as CSV, one row per line of a sale, or as JSON
// lines, one object per sale with its lines: the line's amount (quantity x
// unit price - line discount) and the sale-level discount of the rewards
// redeemed, so the line amounts minus the reward discount give the sale's
// total.
func Sales(w io.Writer, l interface {
	ForEachSale(func(ledger.Sale) error) error
}, format Format) error {
	header := []string{"sale_id", "register", "seq", "member_id", "wall_time", "clock_trusted", "line", "sku", "category", "quantity", "unit_price", "discount", "sale_total", "line_amount", "reward_discount", "rewards"}
	return table(w, format, "sales", header, l.ForEachSale, func(s ledger.Sale) [][]string {
		rd, ids := rewardsOf(s)
		out := make([][]string, 0, len(s.Lines))
		for _, ln := range s.Lines {
			out = append(out, []string{s.ID, s.Register, strconv.FormatUint(s.Seq, 10), s.MemberID, timeText(s.WallTime),
				strconv.FormatBool(s.ClockTrusted), strconv.Itoa(ln.No), ln.SKU, ln.Category, strconv.FormatInt(ln.Quantity, 10),
				itoa(ln.UnitPrice), itoa(ln.Discount), itoa(s.Total), itoa(ln.Amount()), itoa(rd), strings.Join(ids, " ")})
		}
		return out
	}, func(s ledger.Sale) any {
		rd, ids := rewardsOf(s)
		o := saleJSON{Sale: s, Lines: make([]lineJSON, len(s.Lines)), SaleTotal: s.Total, RewardDiscount: rd, Rewards: ids}
		for i, ln := range s.Lines {
			o.Lines[i] = lineJSON{Line: ln, LineAmount: ln.Amount()}
		}
		return o
	})
}

// Refunds writes every refund and void as JSON lines or CSV (one row per
// refunded line: units, money given back and points reversed).
func Refunds(w io.Writer, l interface {
	ForEachRefund(func(ledger.Refund) error) error
}, format Format) error {
	header := []string{"refund_id", "sale_id", "register", "seq", "member_id", "void", "reason", "wall_time", "clock_trusted", "line", "quantity", "amount", "points_reversed", "refund_amount"}
	return table(w, format, "refunds", header, l.ForEachRefund, func(r ledger.Refund) [][]string {
		out := make([][]string, 0, len(r.Lines))
		for _, ln := range r.Lines {
			out = append(out, []string{r.ID, r.SaleID, r.Register, strconv.FormatUint(r.Seq, 10), r.MemberID, strconv.FormatBool(r.Void), r.Reason,
				timeText(r.WallTime), strconv.FormatBool(r.ClockTrusted), strconv.Itoa(ln.No), strconv.FormatInt(ln.Quantity, 10), itoa(ln.Amount), itoa(ln.Points), itoa(r.Amount)})
		}
		return out
	}, func(r ledger.Refund) any { return r })
}

// PointEvents writes every point event (earn, bonus, redeem, reverse,
// adjust, expire) as JSON lines or CSV, member by member in sequence order.
func PointEvents(w io.Writer, l interface {
	ForEachPointEvent(func(ledger.PointEvent) error) error
}, format Format) error {
	header := []string{"event_id", "register", "seq", "member_id", "kind", "points", "sale_id", "line", "reverses", "reason", "operator", "expires_at", "rule_version", "wall_time", "clock_trusted"}
	return table(w, format, "point events", header, l.ForEachPointEvent, func(e ledger.PointEvent) [][]string {
		return [][]string{{e.ID, e.Register, strconv.FormatUint(e.Seq, 10), e.MemberID, string(e.Kind), itoa(e.Points), e.SaleID, lineText(e.Line),
			e.Reverses, e.Reason, e.Operator, timeText(e.ExpiresAt), strconv.Itoa(e.RuleVersion), timeText(e.WallTime), strconv.FormatBool(e.ClockTrusted)}}
	}, func(e ledger.PointEvent) any { return e })
}

func lineText(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// MemberWithBalance is a member as exported: the profile and the effective
// balance the till uses.
type MemberWithBalance struct {
	ledger.Member
	Balance ledger.Points `json:"balance"`
}

// Members writes every member with their balance as JSON lines or CSV.
func Members(w io.Writer, l interface {
	ForEachMember(func(ledger.Member) error) error
	Balance(memberID string) (ledger.Points, error)
}, format Format) error {
	header := []string{"id", "name", "aliases", "tier", "birthday", "email", "phone", "consent", "language", "enrolled_at", "balance"}
	each := func(fn func(MemberWithBalance) error) error {
		// Balances are read after the members, not inside ForEachMember's
		// read transaction: a second read transaction opened while the
		// first is open can deadlock with a writer that must grow the file.
		var ms []ledger.Member
		if err := l.ForEachMember(func(m ledger.Member) error { ms = append(ms, m); return nil }); err != nil {
			return err
		}
		for _, m := range ms {
			b, err := l.Balance(m.ID)
			if err != nil {
				return fmt.Errorf("member %q: %w", m.ID, err)
			}
			if err := fn(MemberWithBalance{Member: m, Balance: b}); err != nil {
				return err
			}
		}
		return nil
	}
	return table(w, format, "members", header, each, func(m MemberWithBalance) [][]string {
		return [][]string{{m.ID, m.Name, strings.Join(m.Aliases, " "), m.Tier, m.Birthday, m.Contact.Email, m.Contact.Phone,
			strconv.FormatBool(m.Consent.Given), m.Language, m.EnrolledAt.UTC().Format(time.RFC3339), itoa(m.Balance)}}
	}, func(m MemberWithBalance) any { return m })
}
