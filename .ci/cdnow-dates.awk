# cdnow-dates.awk: CDNOW purchases (testdata/cdnow: id, customer, YYYYMMDD,
# CDs, dollars) with their real dates moved so the sample's last day
# (1998-06-30) becomes the day before `today` (days since 1970-01-01, UTC).
# Customers up to `customers` only; free (0.00) orders are left out.
# Purchases older than `live` days go to `hist` as head office's history
# (CSV: member_id,sale_id,at,amount); the rest to `livef`, one line each
# (customer, original date, cents, the purchase's index for that customer),
# to be rung up again through the registers. Used by .ci/demo; plain
# integer arithmetic so Debian's default awk (mawk) runs it. Sale ids
# (cdnow-c<customer>-d<date>-n<index>) keep letters between the digits:
# a run of 12-19 digits split only by dashes reads as a payment card
# number, and the register refuses it.
# days: days since 1970-01-01 of a civil date (proleptic Gregorian).
function days(y, m, d,    era, yoe, doy, doe) {
	y -= (m <= 2)
	era = int((y >= 0 ? y : y - 399) / 400)
	yoe = y - era * 400
	doy = int((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
	doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
	return era * 146097 + doe - 719468
}
# civil: the YYYY-MM-DD of a day number.
function civil(z,    era, doe, yoe, y, doy, mp, d, m) {
	z += 719468
	era = int((z >= 0 ? z : z - 146096) / 146097)
	doe = z - era * 146097
	yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
	y = yoe + era * 400
	doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100))
	mp = int((5 * doy + 2) / 153)
	d = doy - int((153 * mp + 2) / 5) + 1
	m = mp + (mp < 10 ? 3 : -9)
	return sprintf("%04d-%02d-%02d", y + (m <= 2), m, d)
}
BEGIN { shift = today - 1 - days(1998, 6, 30); print "member_id,sale_id,at,amount" > hist }
{
	c = $2 + 0; if (c > customers) next
	k = n[c]++
	cents = int($5 * 100 + 0.5); if (cents <= 0) next
	d = days(substr($3, 1, 4) + 0, substr($3, 5, 2) + 0, substr($3, 7, 2) + 0) + shift
	if (d >= today - live) { printf "%d %s %d %d\n", c, $3, cents, k > livef; next }
	printf "cdnow-%04d,cdnow-c%d-d%s-n%d,%s,%d.%02d\n", c, c, $3, k, civil(d), int(cents / 100), cents % 100 > hist
}
