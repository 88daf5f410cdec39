package rules

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"time"
)

// Evaluate scores a sale with this rule set. It validates the rule set first
// (an invalid one gives an error wrapping ErrInvalid); to score many sales
// with the same rules, Compile once and use Engine.Evaluate.
func (rs *RuleSet) Evaluate(in SaleInput) (Outcome, error) {
	e, err := rs.Compile()
	if err != nil {
		return Outcome{}, fmt.Errorf("evaluate: %w", err)
	}
	return e.Evaluate(in)
}

// TierFor returns the tier for the rolling 12-month spend (minor units) and
// visits: the last tier in RuleSet.Tiers whose MinSpend or MinVisits is
// reached (the first tier is the base). With no tiers it returns the zero
// Tier. Negative figures count as zero.
func (rs *RuleSet) TierFor(spend12m int64, visits12m int) Tier {
	best := Tier{}
	for i, t := range rs.Tiers {
		if i == 0 || (t.MinSpend > 0 && spend12m >= t.MinSpend) || (t.MinVisits > 0 && visits12m >= t.MinVisits) {
			best = t
		}
	}
	return best
}

// ExpiryFor returns when points earned at earnedAt expire: ExpiryMonths
// calendar months later in the store's time zone, at the same clock time,
// with the day clamped to the end of a shorter month (31 January + 1 month
// is the last day of February). Zero ExpiryMonths means never (the zero
// time). The ledger stores the result with the points, so a later change of
// ExpiryMonths never re-dates points already earned. An unknown time zone
// counts as UTC (Validate reports it).
func (rs *RuleSet) ExpiryFor(earnedAt time.Time) time.Time {
	if rs.ExpiryMonths <= 0 {
		return time.Time{}
	}
	loc := time.UTC
	if rs.TimeZone != "" && rs.TimeZone != "Local" {
		if l, err := time.LoadLocation(rs.TimeZone); err == nil {
			loc = l
		}
	}
	return addMonthsClamped(earnedAt.In(loc), rs.ExpiryMonths)
}

// tierNamed is the tier called name; the base tier when none is (a tier
// removed from the rules).
func (e *Engine) tierNamed(name string) Tier {
	for _, t := range e.rs.Tiers {
		if t.Name == name {
			return t
		}
	}
	if len(e.rs.Tiers) > 0 {
		return e.rs.Tiers[0]
	}
	return Tier{}
}

// RuleSet returns the rule set the Engine was compiled from.
func (e *Engine) RuleSet() *RuleSet { return e.rs }

// Location returns the store's time zone.
func (e *Engine) Location() *time.Location { return e.loc }

// TierFor is RuleSet.TierFor.
func (e *Engine) TierFor(spend12m int64, visits12m int) Tier {
	return e.rs.TierFor(spend12m, visits12m)
}

// Reward is RuleSet.Reward.
func (e *Engine) Reward(id string) (Reward, bool) { return e.rs.Reward(id) }

// ExpiryFor is RuleSet.ExpiryFor without loading the time zone again.
func (e *Engine) ExpiryFor(earnedAt time.Time) time.Time {
	if e.rs.ExpiryMonths <= 0 {
		return time.Time{}
	}
	return addMonthsClamped(earnedAt.In(e.loc), e.rs.ExpiryMonths)
}

// ActiveCampaigns returns the campaigns active at t, in rule order; none when
// the clock is not trusted. The display uses it to announce "double points
// today".
func (e *Engine) ActiveCampaigns(t time.Time, trusted bool) []Campaign {
	var out []Campaign
	for _, i := range e.active(t, trusted) {
		out = append(out, e.rs.Campaigns[i])
	}
	return out
}

func (e *Engine) active(t time.Time, trusted bool) []int {
	if !trusted || t.IsZero() {
		return nil
	}
	today := dateOf(t.In(e.loc))
	var idx []int
	for i := range e.rs.Campaigns {
		if e.hasFrom[i] && today.before(e.from[i]) {
			continue
		}
		if e.hasTo[i] && today.after(e.to[i]) {
			continue
		}
		if len(e.days[i]) > 0 && !e.days[i][today.weekday()] {
			continue
		}
		idx = append(idx, i)
	}
	return idx
}

// rate returns the rate for a line as points per minor unit, or nil when the
// line is excluded. SKU beats category beats the default. The result is
// shared: never modify it.
func (e *Engine) rate(l LineInput) *big.Rat {
	if r, ok := e.skuRate[l.SKU]; ok {
		return r
	}
	if l.Category != "" {
		if r, ok := e.catRate[l.Category]; ok {
			return r
		}
	}
	return e.defRate
}

func decRat(d *Dec) *big.Rat {
	if d == nil {
		return big.NewRat(1, 1)
	}
	return big.NewRat(int64(*d), int64(DecOne))
}

// multiplier combines the tier multiplier and the multipliers of the given
// campaigns by the stacking policy, capped at MaxMultiplier.
func (e *Engine) multiplier(tier *big.Rat, camps []int) *big.Rat {
	c := big.NewRat(1, 1)
	for _, i := range camps {
		m := decRat(e.rs.Campaigns[i].Multiplier)
		switch e.stacking {
		case StackMultiply:
			c.Mul(c, m)
		default:
			if m.Cmp(c) > 0 {
				c = m
			}
		}
	}
	c.Mul(c, tier)
	if capm := decRat(&e.maxMult); c.Cmp(capm) > 0 {
		c = capm
	}
	return c
}

func appliesTo(cp Campaign, category string) bool {
	return len(cp.Categories) == 0 || slices.Contains(cp.Categories, category)
}

// Evaluate scores a sale; see the package documentation for the arithmetic.
//
// Input rules: every line amount must be 0..MaxAmount and line numbers
// unique (ErrInput, ErrOverflow); the sale time must be set. A malformed
// member birthday only means no birthday bonus. Negative
// rolling figures in the member state count as zero (refunds of older sales
// can make net spend negative).
//
// The tier that multiplies this sale's points is the tier reached with this
// sale counted (spend12m + sale total, visits12m + 1), so a purchase that
// lifts a member into a tier earns at that tier, and Outcome.Tier is that
// tier. Bonuses apply only to member sales (Member.ID set): the first
// purchase bonus is marked pending by the first purchase (Purchases == 0)
// and credited by the next sale; the birthday bonus needs a trusted clock
// and is credited once per birthday occurrence (see BirthdayOccurrence);
// each active campaign with BonusPoints credits it once. With
// Member.TierFixed (the register cannot date the sale) the member's stored
// tier multiplies the points and stays the tier.
func (e *Engine) Evaluate(in SaleInput) (Outcome, error) {
	if in.At.IsZero() {
		return Outcome{}, fmt.Errorf("%w: sale time is not set", ErrInput)
	}
	seen := make(map[int]bool, len(in.Lines))
	var total int64
	for _, l := range in.Lines {
		switch {
		case l.Amount < 0:
			return Outcome{}, fmt.Errorf("%w: line %d: amount %d is negative", ErrInput, l.No, l.Amount)
		case l.Amount > MaxAmount:
			return Outcome{}, fmt.Errorf("%w: line %d: amount %d is above %d", ErrOverflow, l.No, l.Amount, MaxAmount)
		case seen[l.No]:
			return Outcome{}, fmt.Errorf("%w: line number %d appears twice", ErrInput, l.No)
		}
		seen[l.No] = true
		total += l.Amount // both <= MaxAmount: cannot overflow
		if total > MaxAmount {
			return Outcome{}, fmt.Errorf("%w: sale total is above %d", ErrOverflow, MaxAmount)
		}
	}

	m := in.Member
	isMember := m.ID != ""
	var out Outcome
	tierMult := big.NewRat(1, 1)
	if isMember {
		spend := max(m.Spend12m, 0)
		if spend > MaxAmount {
			spend = MaxAmount // beyond any threshold already; avoids overflow
		}
		visits := min(max(m.Visits12m, 0), 1_000_000_000) // beyond any threshold; avoids overflow
		t := e.TierFor(spend+total, visits+1)
		if m.TierFixed {
			t = e.tierNamed(m.Tier)
		}
		out.Tier = t.Name
		tierMult = decRat(t.Multiplier)
	}

	active := e.active(in.At, in.ClockTrusted)
	applied := map[int]bool{}

	// Lines mostly share a rate and a set of campaigns: compute each
	// rate x multiplier product once.
	type factorKey struct {
		rate  *big.Rat
		camps string
	}
	factors := map[factorKey]*big.Rat{}
	exact := make([]*big.Rat, len(in.Lines))
	for i, l := range in.Lines {
		exact[i] = new(big.Rat)
		r := e.rate(l)
		if r == nil || l.Amount == 0 || r.Sign() == 0 {
			continue
		}
		var camps []int
		for _, ci := range active {
			if appliesTo(e.rs.Campaigns[ci], l.Category) {
				camps = append(camps, ci)
				applied[ci] = true
			}
		}
		key := factorKey{r, fmt.Sprint(camps)}
		f, ok := factors[key]
		if !ok {
			f = new(big.Rat).Mul(r, e.multiplier(tierMult, camps))
			factors[key] = f
		}
		exact[i].SetInt64(l.Amount)
		exact[i].Mul(exact[i], f)
	}
	general := e.multiplier(tierMult, slices.DeleteFunc(slices.Clone(active), func(ci int) bool {
		return len(e.rs.Campaigns[ci].Categories) > 0
	}))
	out.Multiplier = ratToDec(general)

	pts, err := e.round(exact)
	if err != nil {
		return Outcome{}, err
	}
	out.Lines = make([]LinePoints, len(in.Lines))
	var sum int64
	for i, l := range in.Lines {
		out.Lines[i] = LinePoints{No: l.No, Points: pts[i]}
		sum += pts[i] // each <= MaxPoints, checked below after every add
		if sum > MaxPoints {
			return Outcome{}, fmt.Errorf("%w: sale would earn more than %d points", ErrOverflow, MaxPoints)
		}
	}

	if isMember {
		bonus := func(kind string, p int64) {
			if p > 0 {
				out.Bonuses = append(out.Bonuses, Bonus{Kind: kind, Points: p})
				sum += p // each bonus <= maxBonus, few of them: no overflow
			}
		}
		switch {
		case m.FirstBonusPending:
			bonus(BonusFirstPurchase, e.rs.FirstPurchaseBonus)
		case m.Purchases <= 0 && e.rs.FirstPurchaseBonus > 0:
			out.FirstBonusPending = true
		}
		// A malformed birthday earns no birthday bonus rather than
		// refusing the sale: the checkout must not stop over member data
		// (the ledger refuses it at enrolment with ParseBirthday).
		if y, ok := e.BirthdayOccurrence(m, in.At, in.ClockTrusted); ok {
			bonus(BonusBirthday, e.rs.Birthday.Points)
			out.BirthdayBonus, out.BirthdayYear = true, y
		}
		for _, ci := range active {
			cp := e.rs.Campaigns[ci]
			if cp.BonusPoints == 0 {
				continue
			}
			ok := len(cp.Categories) == 0
			for _, l := range in.Lines {
				if !ok && e.rate(l) != nil && appliesTo(cp, l.Category) {
					ok = true
				}
			}
			if ok {
				bonus(BonusCampaign+cp.ID, cp.BonusPoints)
				applied[ci] = true
			}
		}
		if sum > MaxPoints {
			return Outcome{}, fmt.Errorf("%w: sale would earn more than %d points", ErrOverflow, MaxPoints)
		}
	}
	for _, ci := range active {
		if applied[ci] {
			out.Campaigns = append(out.Campaigns, e.rs.Campaigns[ci].ID)
		}
	}
	out.ExpiresAt = e.ExpiryFor(in.At)
	return out, nil
}

// round turns the lines' exact points into integers by the rounding mode
// and scope.
func (e *Engine) round(exact []*big.Rat) ([]int64, error) {
	out := make([]int64, len(exact))
	limit := big.NewInt(MaxPoints)
	set := func(i int, v *big.Int) error {
		if v.Cmp(limit) > 0 {
			return fmt.Errorf("%w: a line would earn more than %d points", ErrOverflow, MaxPoints)
		}
		out[i] = v.Int64()
		return nil
	}
	if e.scope != PerSale {
		for i, x := range exact {
			if err := set(i, roundRat(x, e.rounding)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	// Per sale: round the sum once, give each line its floor, then hand the
	// remaining points to the lines with the largest fractional parts.
	sum := new(big.Rat)
	floors := new(big.Int)
	fracs := make([]*big.Rat, len(exact))
	for i, x := range exact {
		sum.Add(sum, x)
		f := roundRat(x, RoundFloor)
		if err := set(i, f); err != nil {
			return nil, err
		}
		floors.Add(floors, f)
		fracs[i] = new(big.Rat).Sub(x, new(big.Rat).SetInt(f))
	}
	extra := new(big.Int).Sub(roundRat(sum, e.rounding), floors).Int64() // 0..len(exact)
	order := make([]int, len(exact))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return fracs[order[a]].Cmp(fracs[order[b]]) > 0 })
	for _, i := range order[:extra] {
		out[i]++
	}
	return out, nil
}

// roundRat rounds a non-negative rational to an integer.
func roundRat(x *big.Rat, mode Rounding) *big.Int {
	q, r := new(big.Int).QuoRem(x.Num(), x.Denom(), new(big.Int))
	if r.Sign() == 0 || mode == RoundFloor || mode == "" {
		return q
	}
	c := new(big.Int).Lsh(r, 1).Cmp(x.Denom()) // 2r vs denominator
	if c > 0 || (c == 0 && (mode == RoundHalfUp || q.Bit(0) == 1)) {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// ratToDec truncates a rational multiplier to a Dec for display.
func ratToDec(x *big.Rat) Dec {
	n := new(big.Int).Mul(x.Num(), big.NewInt(int64(DecOne)))
	return Dec(n.Quo(n, x.Denom()).Int64())
}
