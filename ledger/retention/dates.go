package retention

// civil returns the calendar date of d (days since 1970-01-01) in the
// proleptic Gregorian calendar, as time.Unix(d*86400, 0).UTC().Date()
// would, without building a time.Time.
func civil(d Day) (year, month, day int) {
	// Days from 0000-03-01, then 400-year eras of 146097 days; a year
	// starts in March so the leap day is its last day.
	z := int64(d) + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // [0, 11], March first
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = int(yoe + era*400)
	if month <= 2 {
		year++
	}
	return year, month, day
}

// appendDate appends d as YYYY-MM-DD. ok is false for a year outside
// 0..9999, which time.Format writes differently; callers fall back to it.
func appendDate(b []byte, d Day) ([]byte, bool) {
	y, m, dd := civil(d)
	if y < 0 || y > 9999 {
		return b, false
	}
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+dd/10), byte('0'+dd%10)), true
}

// dayNames hands out the YYYY-MM-DD text of days, one string per distinct
// day: an analysis names three days per member and per category, and a
// population has a few thousand distinct days at most.
type dayNames struct {
	base Day
	s    []string
}

// maxDayNames bounds the span of days one dayNames keeps (about 180
// years); days outside it are formatted each time.
const maxDayNames = 1 << 16

func (n *dayNames) name(d Day) string {
	i := int(d) - int(n.base)
	if i < 0 || i >= len(n.s) {
		if !n.grow(d) {
			return d.String()
		}
		i = int(d) - int(n.base)
	}
	if n.s[i] == "" {
		n.s[i] = d.String()
	}
	return n.s[i]
}

// grow widens the span to hold d, by at least a year each way so a
// population's days do not grow it one by one.
func (n *dayNames) grow(d Day) bool {
	lo, hi := d-366, d+366
	if len(n.s) > 0 {
		lo, hi = min(lo, n.base), max(hi, n.base+Day(len(n.s)))
	}
	if int(hi)-int(lo) > maxDayNames {
		return false
	}
	s := make([]string, int(hi)-int(lo))
	if len(n.s) > 0 {
		copy(s[int(n.base)-int(lo):], n.s)
	}
	n.base, n.s = lo, s
	return true
}
