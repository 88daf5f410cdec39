package retentiontest

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

// Rhythm names the kind of buyer a generated member is.
type Rhythm string

// Rhythms of generated members.
const (
	Weekly    Rhythm = "weekly"
	Biweekly  Rhythm = "biweekly"
	Monthly   Rhythm = "monthly"
	Quarterly Rhythm = "quarterly"
	OneTime   Rhythm = "one-time"
	Stopper   Rhythm = "stopper" // weekly, biweekly or monthly until Stop
	Never     Rhythm = "never"
	Probe     Rhythm = "probe" // an exact interval until Stop (or the end)
)

// The data set's span and the marketer's weekly runs.
var (
	Start = date("2024-06-03")
	End   = date("2026-01-05")
	// Rounds are the six weekly contact runs (Mondays).
	Rounds = []time.Time{date("2025-12-01"), date("2025-12-08"), date("2025-12-15"), date("2025-12-22"), date("2025-12-29"), date("2026-01-05")}
)

func date(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// Person is one generated member with what the generator knows about them.
type Person struct {
	Member   retention.Member
	Rhythm   Rhythm
	Interval int       // days (nominal); 0 for one-time and never
	Stop     time.Time // last purchase of a stopper or a stopping probe; zero otherwise
}

// Data is a generated data set.
type Data struct {
	People []Person
}

// Members returns the retention input.
func (d *Data) Members() []retention.Member {
	out := make([]retention.Member, len(d.People))
	for i, p := range d.People {
		out[i] = p.Member
	}
	return out
}

// Person returns the generated member with the id.
func (d *Data) Person(id string) (Person, bool) {
	for _, p := range d.People {
		if p.Member.ID == id {
			return p, true
		}
	}
	return Person{}, false
}

// ProbeSpec is one probe: an exact interval from First to Until.
type ProbeSpec struct {
	Interval     int
	First, Until string
}

// Probes are the 20 members with exact intervals. Their ids are P01..P20
// in this order.
var Probes = []ProbeSpec{
	{7, "2024-06-03", "2025-11-24"}, // weekly until 2025-11-24
	{30, "2024-06-05", "2025-11-01"},
	{14, "2024-06-10", "2025-11-10"},
	{91, "2024-06-15", "2025-09-14"},
	{7, "2024-09-02", "2026-01-05"}, // weekly to the end
	{14, "2024-09-09", "2026-01-05"},
	{30, "2024-07-01", "2026-01-05"},
	{91, "2024-07-01", "2026-01-05"},
	{7, "2025-01-06", "2025-10-27"},
	{7, "2025-02-03", "2025-12-01"},
	{14, "2025-01-13", "2025-10-20"},
	{14, "2024-08-05", "2025-11-17"},
	{30, "2024-10-01", "2025-08-29"},
	{30, "2024-11-15", "2025-10-11"},
	{21, "2024-08-01", "2026-01-01"},
	{21, "2024-08-01", "2025-10-16"},
	{10, "2025-03-01", "2026-01-05"},
	{10, "2025-03-01", "2025-11-16"},
	{60, "2024-06-20", "2025-12-16"},
	{60, "2024-06-20", "2025-08-17"},
}

// Generate builds the data set for seed. The same seed gives the same data.
func Generate(seed uint64) *Data {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	d := &Data{}
	n := 0
	add := func(r Rhythm, interval int, stop time.Time, purchases []retention.Purchase) *Person {
		n++
		id := fmt.Sprintf("M%03d", n)
		if r == Probe {
			id = fmt.Sprintf("P%02d", len(d.People)-279)
		}
		for i := range purchases {
			purchases[i].SaleID = fmt.Sprintf("%s-%d", id, i+1)
			purchases[i].Seq = uint64(i + 1)
		}
		d.People = append(d.People, Person{Member: retention.Member{ID: id, Purchases: purchases}, Rhythm: r, Interval: interval, Stop: stop})
		return &d.People[len(d.People)-1]
	}
	days := func(lo, hi time.Time) time.Time {
		span := int(hi.Sub(lo).Hours() / 24)
		return lo.AddDate(0, 0, rng.IntN(span+1))
	}
	// amount draws a basket around mean (major units) +/- 30%.
	amount := func(mean float64) retention.Money {
		v := mean * (0.7 + 0.6*rng.Float64())
		return retention.Money(v*100 + 0.5)
	}
	// regular draws purchases every interval +/- jitter from first to last
	// (inclusive); the first basket is smaller by firstFactor.
	regular := func(first, last time.Time, interval, jitter int, basket, firstFactor float64) []retention.Purchase {
		var ps []retention.Purchase
		for t := first; !t.After(last); {
			b := basket
			if len(ps) == 0 {
				b *= firstFactor
			}
			ps = append(ps, retention.Purchase{At: t.Add(time.Duration(9+rng.IntN(10)) * time.Hour), ClockTrusted: true, Amount: amount(b)})
			step := interval
			if jitter > 0 {
				step += rng.IntN(2*jitter+1) - jitter
			}
			t = t.AddDate(0, 0, max(step, 1))
		}
		return ps
	}
	type spec struct {
		r                Rhythm
		count, iv, jit   int
		basket, firstBag float64
		startSpan        int
	}
	for _, s := range []spec{
		{Weekly, 40, 7, 1, 22, 0.6, 300},
		{Biweekly, 25, 14, 2, 35, 0.8, 300},
		{Monthly, 70, 30, 4, 60, 1, 300},
		{Quarterly, 45, 91, 10, 120, 1, 200},
	} {
		for range s.count {
			first := days(Start, Start.AddDate(0, 0, s.startSpan))
			add(s.r, s.iv, time.Time{}, regular(first, End, s.iv, s.jit, s.basket, s.firstBag))
		}
	}
	recent := End.AddDate(0, 0, -42)
	for i := range 60 {
		var at time.Time
		if i < 12 {
			at = days(recent, End)
		} else {
			at = days(Start, recent.AddDate(0, 0, -1))
		}
		add(OneTime, 0, time.Time{}, []retention.Purchase{{At: at.Add(12 * time.Hour), ClockTrusted: true, Amount: amount(70)}})
	}
	for i := range 30 {
		iv, jit, bag := []int{7, 14, 30}[i%3], []int{1, 2, 4}[i%3], []float64{22, 35, 60}[i%3]
		first := days(Start, Start.AddDate(0, 0, 200))
		stop := days(date("2025-06-01"), date("2025-12-15"))
		ps := regular(first, stop, iv, jit, bag, 0.8)
		last := ps[len(ps)-1].At
		add(Stopper, iv, time.Date(last.Year(), last.Month(), last.Day(), 0, 0, 0, 0, time.UTC), ps)
	}
	for range 10 {
		add(Never, 0, time.Time{}, nil)
	}
	for _, p := range Probes {
		first, until := date(p.First), date(p.Until)
		ps := regular(first, until, p.Interval, 0, 40, 1)
		last := ps[len(ps)-1].At
		stop := time.Date(last.Year(), last.Month(), last.Day(), 0, 0, 0, 0, time.UTC)
		if until.Equal(End) || until.After(End.AddDate(0, 0, -p.Interval)) {
			stop = time.Time{} // still buying at the end
		}
		add(Probe, p.Interval, stop, ps)
	}
	d.people(rng)
	return d
}

// Withdrawal days: some members withdraw a channel in week 3 and week 5
// of the rounds.
var (
	WithdrawWeek3 = Rounds[2].AddDate(0, 0, -1)
	WithdrawWeek5 = Rounds[4].AddDate(0, 0, -1)
)

var firstNames = []string{"Ana", "Boris", "Dana", "Elena", "Georgi", "Hana", "Ivan", "Maya", "Noa", "Petar", "Rina", "Stefan", "Tamar", "Yoni", "Zlatka"}

// people fills in names, addresses, consent, birthdays and enrolment.
func (d *Data) people(rng *rand.Rand) {
	withdrawn := 0
	for i := range d.People {
		m := &d.People[i].Member
		if len(m.Purchases) > 0 {
			m.EnrolledAt = m.Purchases[0].At.Truncate(24 * time.Hour)
		} else {
			m.EnrolledAt = Start.AddDate(0, 0, rng.IntN(400))
		}
		m.Name = fmt.Sprintf("%s %c.", firstNames[rng.IntN(len(firstNames))], 'A'+rng.IntN(26))
		m.Phone = fmt.Sprintf("+359888%06d", i)
		m.Email = fmt.Sprintf("%s@example.org", m.ID)
		// Birthdays over the year: 85% give one, a fifth of them without
		// the year.
		if rng.Float64() < 0.85 {
			bd := time.Date(1950+rng.IntN(50), time.January, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(365))
			if rng.Float64() < 0.2 {
				m.Birthday = bd.Format("--01-02")
			} else {
				m.Birthday = bd.Format("2006-01-02")
			}
		}
		// About 70% consent: SMS, email or both; a few by phone or at the
		// till. Probes all consent by SMS so tests can follow them.
		u := rng.Float64()
		var chans []string
		switch {
		case d.People[i].Rhythm == Probe:
			chans = []string{retention.ChannelSMS}
		case u < 0.28:
			chans = []string{retention.ChannelSMS}
		case u < 0.49:
			chans = []string{retention.ChannelEmail}
		case u < 0.66:
			chans = []string{retention.ChannelSMS, retention.ChannelEmail}
		case u < 0.68:
			chans = []string{retention.ChannelPhone}
		case u < 0.70:
			chans = []string{retention.ChannelInStore}
		}
		how := []string{"in-store form", "web", "app"}[rng.IntN(3)]
		for _, c := range chans {
			m.Consents = append(m.Consents, retention.Consent{Channel: c, Given: true, At: m.EnrolledAt, How: how})
		}
		// Withdrawals: every tenth consenting non-probe withdraws its
		// first channel, alternately in week 3 and week 5.
		if len(chans) > 0 && d.People[i].Rhythm != Probe && i%10 == 3 {
			at := WithdrawWeek3
			if withdrawn%2 == 1 {
				at = WithdrawWeek5
			}
			withdrawn++
			m.Consents = append(m.Consents, retention.Consent{Channel: chans[0], Given: false, At: at.Add(15 * time.Hour), How: "reply STOP"})
		}
		m.Consent = len(chans) > 0
	}
	// One member born on 29 February.
	d.People[7].Member.Birthday = "1988-02-29"
}

// WritePurchasesCSV writes every purchase as purchases CSV
// (member_id,sale_id,at,amount).
func (d *Data) WritePurchasesCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"member_id", "sale_id", "at", "amount"})
	for _, p := range d.People {
		for _, q := range p.Member.Purchases {
			cw.Write([]string{p.Member.ID, q.SaleID, q.At.Format(time.RFC3339), fmt.Sprintf("%d.%02d", q.Amount/100, q.Amount%100)})
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteMembersCSV writes the members file
// (member_id,name,email,phone,consent,birthday,enrolled_at); consent is
// "no" here, the channels are in the consents file.
func (d *Data) WriteMembersCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"member_id", "name", "email", "phone", "consent", "birthday", "enrolled_at"})
	for _, p := range d.People {
		m := p.Member
		cw.Write([]string{m.ID, m.Name, m.Email, m.Phone, "no", m.Birthday, m.EnrolledAt.Format("2006-01-02")})
	}
	cw.Flush()
	return cw.Error()
}

// WriteConsentsCSV writes the consent events
// (member_id,channel,consent,at,how).
func (d *Data) WriteConsentsCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"member_id", "channel", "consent", "at", "how"})
	for _, p := range d.People {
		for _, c := range p.Member.Consents {
			v := "yes"
			if !c.Given {
				v = "no"
			}
			cw.Write([]string{p.Member.ID, c.Channel, v, c.At.Format(time.RFC3339), c.How})
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteLegacyMembersCSV writes members with a yes/no consent column
// (member_id,consent,birthday,enrolled_at): consent is yes for members who
// gave consent on any channel.
func (d *Data) WriteLegacyMembersCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"member_id", "consent", "birthday", "enrolled_at"})
	for _, p := range d.People {
		m := p.Member
		c := "no"
		if m.Consent {
			c = "yes"
		}
		cw.Write([]string{m.ID, c, m.Birthday, m.EnrolledAt.Format("2006-01-02")})
	}
	cw.Flush()
	return cw.Error()
}
