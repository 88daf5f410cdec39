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

// Sales writes every sale as JSON lines or CSV (one row per line of a
// sale).
func Sales(w io.Writer, l interface {
	ForEachSale(func(ledger.Sale) error) error
}, format Format) error {
	if format == CSV {
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"sale_id", "register", "seq", "member_id", "wall_time", "clock_trusted", "line", "sku", "category", "quantity", "unit_price", "discount", "sale_total"})
		err := l.ForEachSale(func(s ledger.Sale) error {
			for _, ln := range s.Lines {
				if err := cw.Write([]string{s.ID, s.Register, strconv.FormatUint(s.Seq, 10), s.MemberID, s.WallTime.UTC().Format(time.RFC3339Nano),
					strconv.FormatBool(s.ClockTrusted), strconv.Itoa(ln.No), ln.SKU, ln.Category, strconv.FormatInt(ln.Quantity, 10),
					strconv.FormatInt(int64(ln.UnitPrice), 10), strconv.FormatInt(int64(ln.Discount), 10), strconv.FormatInt(int64(s.Total), 10)}); err != nil {
					return err
				}
			}
			return nil
		})
		cw.Flush()
		if err != nil {
			return fmt.Errorf("export sales: %w", err)
		}
		return cw.Error()
	}
	enc := json.NewEncoder(w)
	if err := l.ForEachSale(func(s ledger.Sale) error { return enc.Encode(s) }); err != nil {
		return fmt.Errorf("export sales: %w", err)
	}
	return nil
}

// Members writes every member as JSON lines or CSV.
func Members(w io.Writer, l interface {
	ForEachMember(func(ledger.Member) error) error
}, format Format) error {
	if format == CSV {
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"id", "name", "aliases", "tier", "birthday", "email", "phone", "consent", "language", "enrolled_at"})
		err := l.ForEachMember(func(m ledger.Member) error {
			return cw.Write([]string{m.ID, m.Name, strings.Join(m.Aliases, " "), m.Tier, m.Birthday, m.Contact.Email, m.Contact.Phone,
				strconv.FormatBool(m.Consent.Given), m.Language, m.EnrolledAt.UTC().Format(time.RFC3339)})
		})
		cw.Flush()
		if err != nil {
			return fmt.Errorf("export members: %w", err)
		}
		return cw.Error()
	}
	enc := json.NewEncoder(w)
	if err := l.ForEachMember(func(m ledger.Member) error { return enc.Encode(m) }); err != nil {
		return fmt.Errorf("export members: %w", err)
	}
	return nil
}
