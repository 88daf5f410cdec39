package retention

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ParseMoney parses a decimal amount with at most two decimals ("29.33",
// "-5", "0.5") into minor units without going through floating point.
func ParseMoney(s string) (Money, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && frac == "" || len(frac) > 2 || hasDot && frac == "" {
		return 0, fmt.Errorf("%w: amount %q", ErrInvalid, s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	if whole == "" {
		whole = "0"
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return 0, fmt.Errorf("%w: amount %q", ErrInvalid, s)
			}
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > (1<<62)/100 {
		return 0, fmt.Errorf("%w: amount %q out of range", ErrInvalid, s)
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	v := Money(w*100 + f)
	if neg {
		v = -v
	}
	return v, nil
}

// ParseCDNOW reads CDNOW purchase files into members sorted by id. Both
// published layouts are accepted, whitespace or comma separated, with or
// without a header line:
//   - the sample: master id, sample id, YYYYMMDD, CDs, dollars (members
//     keyed by the sample id);
//   - the master file: customer id, YYYYMMDD, CDs, dollars.
//
// Every line must have the same layout. Dates are midnight UTC; amounts
// become cents. CDNOW's 0.00 orders are real (free) orders, so analyses of
// CDNOW set Config.KeepZeroAmount to count them, as the published fit does.
func ParseCDNOW(r io.Reader) ([]Member, error) {
	sc := bufio.NewScanner(r)
	byID := map[string]*Member{}
	line, layout := 0, 0
	for sc.Scan() {
		line++
		f := strings.FieldsFunc(sc.Text(), func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == ';' })
		if len(f) == 0 {
			continue
		}
		if layout == 0 && line == 1 && !isDigits(f[0]) {
			continue // a header line
		}
		if len(f) != 4 && len(f) != 5 {
			return nil, fmt.Errorf("%w: cdnow line %d: %d fields, want 5 (sample: master id, sample id, date, CDs, dollars) or 4 (master file: id, date, CDs, dollars)", ErrInvalid, line, len(f))
		}
		if layout == 0 {
			layout = len(f)
		} else if len(f) != layout {
			return nil, fmt.Errorf("%w: cdnow line %d: %d fields where earlier lines have %d", ErrInvalid, line, len(f), layout)
		}
		if layout == 5 {
			f = f[1:]
		}
		id := strings.TrimLeft(f[0], "0")
		if id == "" || !isDigits(f[0]) {
			return nil, fmt.Errorf("%w: cdnow line %d: customer id %q", ErrInvalid, line, f[0])
		}
		at, err := time.Parse("20060102", f[1])
		if err != nil {
			return nil, fmt.Errorf("%w: cdnow line %d: date %q", ErrInvalid, line, f[1])
		}
		if _, err := strconv.Atoi(f[2]); err != nil {
			return nil, fmt.Errorf("%w: cdnow line %d: quantity %q", ErrInvalid, line, f[2])
		}
		amt, err := ParseMoney(f[3])
		if err != nil {
			return nil, fmt.Errorf("cdnow line %d: %w", line, err)
		}
		m := byID[id]
		if m == nil {
			m = &Member{ID: id}
			byID[id] = m
		}
		m.Purchases = append(m.Purchases, Purchase{SaleID: fmt.Sprintf("cdnow-%d", line), Seq: uint64(line), At: at, ClockTrusted: true, Amount: amt})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read cdnow: %w", err)
	}
	return sortedMembers(byID), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func sortedMembers(byID map[string]*Member) []Member {
	out := make([]Member, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].ID, out[j].ID
		if len(a) != len(b) {
			return len(a) < len(b) // numeric ids in numeric order
		}
		return a < b
	})
	return out
}

func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02", s)
}

// ParsePurchasesCSV reads purchases from CSV with the header
// member_id,sale_id,at,amount[,categories]: at is RFC 3339 or YYYY-MM-DD,
// amount a decimal in major units ("12.50"), categories separated by ";".
// A negative amount with the sale_id of an earlier sale is a refund.
func ParsePurchasesCSV(r io.Reader) ([]Member, error) {
	byID := map[string]*Member{}
	err := readCSV(r, "purchases", []string{"member_id", "sale_id", "at", "amount"}, func(line int, get func(string) string) error {
		id := get("member_id")
		if id == "" {
			return fmt.Errorf("%w: purchases csv line %d: empty member_id", ErrInvalid, line)
		}
		at, err := parseWhen(get("at"))
		if err != nil {
			return fmt.Errorf("%w: purchases csv line %d: time %q", ErrInvalid, line, get("at"))
		}
		amt, err := ParseMoney(get("amount"))
		if err != nil {
			return fmt.Errorf("purchases csv line %d: %w", line, err)
		}
		var cats []string
		if c := get("categories"); c != "" {
			for _, x := range strings.Split(c, ";") {
				if x = strings.TrimSpace(x); x != "" {
					cats = append(cats, x)
				}
			}
		}
		m := byID[id]
		if m == nil {
			m = &Member{ID: id}
			byID[id] = m
		}
		m.Purchases = append(m.Purchases, Purchase{SaleID: get("sale_id"), Seq: uint64(line), At: at, ClockTrusted: true, Amount: amt, Categories: cats})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sortedMembers(byID), nil
}

// readCSV reads a CSV table whose first row is a header naming its columns
// (any order, case-insensitive), checks the needed columns are there, and
// calls row for every further record with its 1-based line number and a
// getter returning a trimmed cell ("" for a missing column). what names the
// table in errors.
func readCSV(r io.Reader, what string, need []string, row func(line int, get func(string) string) error) error {
	return readCSVCols(r, what, need, nil, row)
}

// readCSVCols is readCSV; a non-nil allowed lists every column the table
// may have.
func readCSVCols(r io.Reader, what string, need, allowed []string, row func(line int, get func(string) string) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%w: %s csv: no header: %v", ErrInvalid, what, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.ToLower(h))] = i
	}
	if allowed != nil {
		for h := range col {
			if !slices.Contains(allowed, h) {
				return fmt.Errorf("%w: %s csv: unknown column %q (columns: %s)", ErrInvalid, what, h, strings.Join(allowed, ","))
			}
		}
	}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return fmt.Errorf("%w: %s csv: missing column %q", ErrInvalid, what, n)
		}
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s csv line %d: %v", ErrInvalid, what, line, err)
		}
		get := func(k string) string {
			if i, ok := col[k]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if err := row(line, get); err != nil {
			return err
		}
	}
}

// MembersCSVColumns are the columns a members CSV may have; member_id and
// consent are required, any other column is an error (a column the reader
// does not know would otherwise be ignored without a word).
var MembersCSVColumns = []string{"member_id", "consent", "name", "email", "phone", "birthday", "enrolled_at"}

// ParseMembersCSV reads member records with the header
// member_id,consent[,name,email,phone,birthday,enrolled_at] and merges them
// into ms, adding members that have no purchases. It returns the merged
// list.
//
// consent is either a list of channels separated by ";" or spaces ("sms",
// "sms;email", "phone", "in-store"), each given as of enrolled_at by "members
// file", or yes/no (true/false/1/0): yes is consent on every channel the
// member has an address for (sms and phone for a phone number, email for an
// email address) or in-store when there is none. Consent events with their
// own dates and withdrawals come from ParseConsentsCSV.
func ParseMembersCSV(r io.Reader, ms []Member) ([]Member, error) {
	byID := map[string]*Member{}
	for i := range ms {
		m := ms[i]
		byID[m.ID] = &m
	}
	err := readCSVCols(r, "members", []string{"member_id", "consent"}, MembersCSVColumns, func(line int, get func(string) string) error {
		id := get("member_id")
		if id == "" {
			return fmt.Errorf("%w: members csv line %d: empty member_id", ErrInvalid, line)
		}
		bd := get("birthday")
		if bd != "" {
			if _, _, ok := birthdayMonthDay(bd); !ok {
				return fmt.Errorf("%w: members csv line %d: birthday %q", ErrInvalid, line, bd)
			}
		}
		var enrolled time.Time
		if s := get("enrolled_at"); s != "" {
			var err error
			if enrolled, err = parseWhen(s); err != nil {
				return fmt.Errorf("%w: members csv line %d: enrolled_at %q", ErrInvalid, line, s)
			}
		}
		m := byID[id]
		if m == nil {
			m = &Member{ID: id}
			byID[id] = m
		}
		m.Birthday, m.EnrolledAt = bd, enrolled
		m.Name, m.Email, m.Phone = get("name"), get("email"), get("phone")
		var chans []string
		switch v := strings.ToLower(get("consent")); v {
		case "true", "yes", "1", "y":
			chans = m.legacyChannels()
		case "false", "no", "0", "n", "":
		default:
			for _, c := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ' ' || r == '|' }) {
				if !ValidChannel(c) {
					return fmt.Errorf("%w: members csv line %d: consent %q: channel %q is not one of %v (or yes/no)", ErrInvalid, line, get("consent"), c, Channels)
				}
				if err := channelAddress(m, c); err != nil {
					return fmt.Errorf("%w: members csv line %d: %v", ErrInvalid, line, err)
				}
				chans = append(chans, c)
			}
		}
		m.Consents = nil
		for _, c := range chans {
			m.Consents = append(m.Consents, Consent{Channel: c, Given: true, At: enrolled, How: "members file"})
		}
		m.Consent = len(chans) > 0
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sortedMembers(byID), nil
}

// channelAddress checks that m has an address for channel c.
func channelAddress(m *Member, c string) error {
	switch c {
	case ChannelSMS, ChannelPhone:
		if m.Phone == "" {
			return fmt.Errorf("consent on %s without a phone number", c)
		}
	case ChannelEmail:
		if m.Email == "" {
			return fmt.Errorf("consent on email without an email address")
		}
	}
	return nil
}

// ParseConsentsCSV reads consent events with the header
// member_id,channel,consent,at[,how] (consent yes/no: given or withdrawn)
// and adds them to the members of ms, which it returns. An event for a
// member not in ms, an unknown channel, or a channel without an address is
// an error naming the line.
func ParseConsentsCSV(r io.Reader, ms []Member) ([]Member, error) {
	idx := map[string]int{}
	out := append([]Member(nil), ms...)
	for i := range out {
		idx[out[i].ID] = i
	}
	err := readCSVCols(r, "consents", []string{"member_id", "channel", "consent", "at"}, []string{"member_id", "channel", "consent", "at", "how"}, func(line int, get func(string) string) error {
		i, ok := idx[get("member_id")]
		if !ok {
			return fmt.Errorf("%w: consents csv line %d: unknown member %q", ErrInvalid, line, get("member_id"))
		}
		m := &out[i]
		c := Consent{Channel: strings.ToLower(get("channel")), How: get("how")}
		if !ValidChannel(c.Channel) {
			return fmt.Errorf("%w: consents csv line %d: channel %q is not one of %v", ErrInvalid, line, get("channel"), Channels)
		}
		switch strings.ToLower(get("consent")) {
		case "true", "yes", "1", "y":
			c.Given = true
			if err := channelAddress(m, c.Channel); err != nil {
				return fmt.Errorf("%w: consents csv line %d: member %s: %v", ErrInvalid, line, m.ID, err)
			}
		case "false", "no", "0", "n":
		default:
			return fmt.Errorf("%w: consents csv line %d: consent %q (yes or no)", ErrInvalid, line, get("consent"))
		}
		var err error
		if c.At, err = parseWhen(get("at")); err != nil {
			return fmt.Errorf("%w: consents csv line %d: at %q", ErrInvalid, line, get("at"))
		}
		m.Consents = append(m.Consents, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Consent = len(out[i].ConsentAt(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))) > 0
	}
	return out, nil
}

// birthdayMonthDay parses "YYYY-MM-DD" or "--MM-DD".
func birthdayMonthDay(s string) (time.Month, int, bool) {
	var t time.Time
	var err error
	if strings.HasPrefix(s, "--") {
		t, err = time.Parse("2006-01-02", "2000"+s[1:]) // leap year so 02-29 parses
	} else {
		t, err = time.Parse("2006-01-02", s)
	}
	if err != nil {
		return 0, 0, false
	}
	return t.Month(), t.Day(), true
}
