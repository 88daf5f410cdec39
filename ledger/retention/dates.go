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
