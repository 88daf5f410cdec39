package rules

import (
	"fmt"
	"strconv"
	"time"
)

// date is a calendar date with no time zone, kept as midnight UTC so that
// day arithmetic never meets a daylight-saving jump.
type date struct{ t time.Time }

func dateOf(t time.Time) date {
	y, m, d := t.Date()
	return mkDate(y, m, d)
}

func mkDate(y int, m time.Month, d int) date {
	return date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

func (a date) addDays(n int) date       { return date{a.t.AddDate(0, 0, n)} }
func (a date) before(b date) bool       { return a.t.Before(b.t) }
func (a date) after(b date) bool        { return a.t.After(b.t) }
func (a date) String() string           { return a.t.Format(time.DateOnly) }
func (a date) weekday() time.Weekday    { return a.t.Weekday() }
func (a date) year() int                { return a.t.Year() }
func (a date) between(lo, hi date) bool { return !a.before(lo) && !a.after(hi) }

// parseDate reads "YYYY-MM-DD" strictly (no normalisation: 2025-02-30 is an
// error, not 2 March).
func parseDate(s string) (date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return date{}, fmt.Errorf("%q is not a date; use YYYY-MM-DD", s)
	}
	return dateOf(t), nil
}

// daysIn returns the number of days in month m of year y.
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// ParseBirthday reads a member's birthday, "YYYY-MM-DD" or "--MM-DD" when
// the year is unknown, and returns its month and day. "--02-29" is valid.
// The ledger can use it to refuse a malformed birthday at enrolment.
func ParseBirthday(s string) (time.Month, int, error) {
	bad := fmt.Errorf("%w: birthday %q: use YYYY-MM-DD or --MM-DD", ErrInput, s)
	var ms, ds string
	switch {
	case len(s) == 7 && s[:2] == "--" && s[4] == '-':
		ms, ds = s[2:4], s[5:7]
	case len(s) == 10:
		d, err := parseDate(s)
		if err != nil || d.year() < 1850 {
			return 0, 0, bad
		}
		return d.t.Month(), d.t.Day(), nil
	default:
		return 0, 0, bad
	}
	m, err1 := strconv.Atoi(ms)
	d, err2 := strconv.Atoi(ds)
	if err1 != nil || err2 != nil || ms[0] == '+' || ds[0] == '+' || m < 1 || m > 12 || d < 1 || d > daysIn(2000, time.Month(m)) {
		return 0, 0, bad
	}
	return time.Month(m), d, nil
}

// birthdayIn returns the date a birthday is celebrated in year y: 29 February
// falls on 28 February in a year that has none.
func birthdayIn(y int, m time.Month, d int) date {
	if n := daysIn(y, m); d > n {
		d = n
	}
	return mkDate(y, m, d)
}

// birthdayWindow returns the start of the birthday window that contains
// today, if any, and the year of the birthday occurrence it belongs to (a
// window around 1 January may start in the year before its occurrence).
func birthdayWindow(today date, m time.Month, d, before, after int) (date, int, bool) {
	for y := today.year() - 1; y <= today.year()+1; y++ {
		occ := birthdayIn(y, m, d)
		start := occ.addDays(-before)
		if today.between(start, occ.addDays(after)) {
			return start, y, true
		}
	}
	return date{}, 0, false
}

// addMonthsClamped adds n months to t's calendar date, clamping the day to
// the end of the target month (31 January + 1 month = 28 or 29 February,
// never 2 or 3 March), and keeps t's clock time and location.
func addMonthsClamped(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	total := int(m) - 1 + n
	ty := y + total/12
	tm := total % 12
	if tm < 0 {
		tm += 12
		ty--
	}
	month := time.Month(tm + 1)
	if dim := daysIn(ty, month); d > dim {
		d = dim
	}
	return time.Date(ty, month, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}
