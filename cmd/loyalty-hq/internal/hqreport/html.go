package hqreport

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// chart geometry
const (
	chartW, chartH         = 640, 260
	padL, padR, padT, padB = 64, 16, 16, 48
)

// esc escapes text for SVG (it is XML).
func esc(s string) string { return template.HTMLEscapeString(s) }

// barChart draws a bar chart. Every bar carries data-label and data-value
// so tests (and curious people) can read the numbers back from the DOM.
func barChart(id, yLabel, xLabel string, labels []string, values []float64) template.HTML {
	var b strings.Builder
	maxV := 0.0
	for _, v := range values {
		maxV = math.Max(maxV, v)
	}
	if maxV == 0 {
		maxV = 1
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" data-chart="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img">`, esc(id), chartW, chartH, chartW, chartH)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	axes(&b, maxV, yLabel)
	n := float64(len(values))
	for i, v := range values {
		slot := plotW / n
		x := float64(padL) + float64(i)*slot + slot*0.1
		h := v / maxV * plotH
		y := float64(padT) + plotH - h
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" data-label="%s" data-value="%g"><title>%s: %g</title></rect>`,
			x, y, slot*0.8, h, esc(labels[i]), v, esc(labels[i]), v)
		fmt.Fprintf(&b, `<text class="xl" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x+slot*0.4, chartH-padB+16, esc(labels[i]))
	}
	fmt.Fprintf(&b, `<text class="xl" x="%d" y="%d" text-anchor="middle">%s</text>`, padL+int(plotW/2), chartH-8, esc(xLabel))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func axes(b *strings.Builder, maxV float64, yLabel string) {
	plotH := float64(chartH - padT - padB)
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, padT, padL, chartH-padB)
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, padL, chartH-padB, chartW-padR, chartH-padB)
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		y := float64(padT) + plotH - plotH*float64(i)/4
		fmt.Fprintf(b, `<text class="yl" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, y+4, tick(v))
	}
	fmt.Fprintf(b, `<text class="yl" x="10" y="%d" transform="rotate(-90 10 %d)" text-anchor="middle">%s</text>`, chartH/2, chartH/2, esc(yLabel))
}

func tick(v float64) string {
	if v >= 10 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// lineChart draws one polyline per series over x = 1..n.
func lineChart(id, yLabel, xLabel string, names []string, series [][]float64) template.HTML {
	var b strings.Builder
	maxV, maxN := 0.0, 1
	for _, s := range series {
		maxN = max(maxN, len(s))
		for _, v := range s {
			maxV = math.Max(maxV, v)
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" data-chart="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img">`, esc(id), chartW, chartH, chartW, chartH)
	axes(&b, maxV, yLabel)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	xOf := func(i int) float64 {
		if maxN == 1 {
			return float64(padL) + plotW/2
		}
		return float64(padL) + plotW*float64(i)/float64(maxN-1)
	}
	for i := 0; i < maxN; i++ {
		fmt.Fprintf(&b, `<text class="xl" x="%.1f" y="%d" text-anchor="middle">%d</text>`, xOf(i), chartH-padB+16, i+1)
	}
	fmt.Fprintf(&b, `<text class="xl" x="%d" y="%d" text-anchor="middle">%s</text>`, padL+int(plotW/2), chartH-8, esc(xLabel))
	for k, s := range series {
		if len(s) == 0 {
			continue
		}
		var pts, vals []string
		for i, v := range s {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(i), float64(padT)+plotH-v/maxV*plotH))
			vals = append(vals, fmt.Sprintf("%.4f", v))
		}
		hue := (k * 47) % 360
		fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="hsl(%d,60%%,40%%)" stroke-width="2" points="%s" data-series="%s" data-values="%s"><title>%s</title></polyline>`,
			hue, strings.Join(pts, " "), esc(names[k]), strings.Join(vals, " "), esc(names[k]))
	}
	b.WriteString(`</svg><p class="legend">`)
	for k, n := range names {
		fmt.Fprintf(&b, `<span style="color:hsl(%d,60%%,40%%)">&#9632; %s</span> `, (k*47)%360, esc(n))
	}
	b.WriteString(`</p>`)
	return template.HTML(b.String())
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Retention report {{.R.AsOf}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
svg{display:block;margin:.5em 0}.bar{fill:#3b6ea5}.axis{stroke:#444}
.xl,.yl{font-size:11px;fill:#444}.note{color:#555;font-size:.9em}
</style></head><body>
<h1>Retention report as of {{.R.AsOf}}</h1>
<table id="summary">
<tr><th>members</th><td>{{.R.Metrics.Members}}</td></tr>
<tr><th>buyers / repeat buyers</th><td>{{.R.Metrics.Buyers}} / {{.R.Metrics.Repeaters}}</td></tr>
<tr><th>repeat-customer ratio</th><td>{{.Repeat}}</td></tr>
<tr><th>revenue</th><td>{{.Revenue}}</td></tr>
<tr><th>average basket new / returning (pooled)</th><td>{{.BasketNew}} / {{.BasketRet}}</td></tr>
<tr><th>repeat buyers: first / later basket (same customers)</th><td>{{.FirstSame}} / {{.LaterSame}}; {{.FirstSmaller}} spent less on their first visit</td></tr>
<tr><th>days between purchases: typical customer / all gaps pooled</th><td>{{printf "%.0f" .R.Metrics.MemberIntervalDays}} / {{printf "%.0f" .R.Metrics.MedianIntervalDays}}</td></tr>
<tr><th>revenue share of the top {{.TopShare}} of customers</th><td>{{.TopRev}}</td></tr>
<tr><th>sleeping rule</th><td>{{.R.Sleeping}}</td></tr>
<tr><th>BG/NBD model</th><td>{{.Model}}</td></tr>
<tr><th>excluded purchase entries</th><td>{{.Excluded}}</td></tr>
</table>
<h2>Time between purchases</h2>
{{.Intervals}}
<h2>Segments</h2>
{{.Segments}}
<h2>Statuses</h2>
<p class="note">Active, due (past the own interval), sleeping (the sleeping rule), lost (absent over 6 own intervals and 180 days).</p>
{{.Statuses}}
<h2>Repeat curve by first-purchase cohort</h2>
<p class="note">Share of each monthly cohort that made a second purchase within N months of the first.</p>
{{.Cohorts}}
<h2>Probability of being active (BG/NBD)</h2>
<p class="note">Members with one purchase day are at 1.0 by construction (in BG/NBD a customer can only drop out
right after a repeat purchase); their risk shows in P(no purchase) and the sleeping rule instead.</p>
{{.PAlive}}
<h2>Value by risk</h2>
<table id="valuerisk"><tr><th>value</th><th>active</th><th>due</th><th>sleeping</th><th>lost</th></tr>
{{range .Matrix}}<tr><td>{{.Name}}</td>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<h2>Uplift</h2>
<p>If 15% of the {{.R.Metrics.Repeaters}} repeat buyers bought once more a year: +{{.Uplift}} a year ({{.UpliftPct}} of the last 12 months' revenue, {{.Revenue12}}).</p>
{{with .Campaign}}<h2>Did the contacts work?</h2>
<p class="note">From the contact log: contacts of {{.What}}, purchases in the {{.Days}} days after each member's first contact of a kind,
contacted members against the held-out control group (listed but not contacted). 95% intervals: Wilson for rates,
Newcombe for their difference, bootstrap for spend.</p>
<table id="campaign"><tr><th>group</th><th>members</th><th>returned</th><th>return rate</th><th>purchase days</th><th>spend</th><th>per member</th></tr>
{{range .Groups}}<tr data-group="{{.Name}}" data-members="{{.Members}}" data-returned="{{.Returned}}"><td>{{.Name}}</td><td>{{.Members}}</td><td>{{.Returned}}</td><td>{{.Rate}}</td><td>{{.Purchases}}</td><td>{{.Spend}}</td><td>{{.PerMember}}</td></tr>
{{end}}</table>
<p>Difference, contacted minus held out: return rate {{.RateDiff}}; spend per member {{.SpendDiff}}.{{if .NotYet}} Not yet measurable: {{.NotYet}} contacts whose {{.Days}} days have not passed.{{end}}</p>
<p id="campaign-verdict"><strong>{{.Verdict}}</strong></p>
{{if .Share}}<p id="campaign-uplift">{{if .Conclusive}}Measured uplift{{else}}Not established, so no forecast{{end}}: if {{.Share}} of the {{.Repeaters}} repeat buyers
(the measured difference; 95% {{.ShareLoPct}} to {{.ShareHiPct}}) bought once more a year: +{{.Uplift}} a year ({{.UpliftPct}}), between +{{.Lo}} and +{{.Hi}}.</p>{{end}}
{{end}}</body></html>
`))

// WriteHTML writes the self-contained HTML report: inline CSS and SVG, no
// scripts, no external assets, so it can be mailed or archived as is.
func (r *Report) WriteHTML(w io.Writer) error {
	m := r.Metrics
	var ivL []string
	var ivV []float64
	for _, b := range m.Intervals {
		ivL, ivV = append(ivL, b.Label), append(ivV, float64(b.Count))
	}
	segL, segV := r.segmentCounts()
	var paL []string
	var paV []float64
	for _, b := range m.PAlive {
		paL, paV = append(paL, b.Label), append(paV, float64(b.Count))
	}
	var names []string
	var series [][]float64
	for _, c := range m.Cohorts {
		names = append(names, fmt.Sprintf("%s (%d)", c.Cohort, c.Members))
		series = append(series, c.Repeat)
	}
	model := "not fitted: " + r.ModelError
	if r.Model != nil {
		model = fmt.Sprintf("r=%.4f alpha=%.4f a=%.4f b=%.4f, log-likelihood %.1f", r.Model.R, r.Model.Alpha, r.Model.A, r.Model.B, r.Model.LogLik)
		for _, b := range r.Model.AtBound {
			model += "; " + b
		}
	}
	if r.RuleNote != "" {
		model += ". " + r.RuleNote
	}
	e := r.Excluded
	type row struct {
		Name  string
		Cells []int
	}
	var matrix []row
	for _, v := range []string{"high", "mid", "low"} {
		rr := row{Name: v}
		for _, c := range r.ValueRisk {
			if c.Value == v {
				rr.Cells = append(rr.Cells, c.Members)
			}
		}
		matrix = append(matrix, rr)
	}
	return page.Execute(w, map[string]any{
		"R":            r,
		"Repeat":       pct(m.RepeatRatio),
		"Revenue":      money(m.Revenue),
		"BasketNew":    money(m.AvgBasketNew),
		"BasketRet":    money(m.AvgBasketReturning),
		"TopShare":     pct(m.TopShare),
		"TopRev":       pct(m.TopRevenueShare),
		"Model":        model,
		"Excluded":     fmt.Sprintf("%d (%s)", e.Total(), r.excludedLine()),
		"FirstSame":    money(m.RepeatFirstBasket),
		"LaterSame":    money(m.RepeatLaterBasket),
		"FirstSmaller": pct(m.RepeatFirstSmaller),
		"Revenue12":    money(m.RevenueLast12Months),
		"Intervals":    barChart("intervals", "gaps between purchase days (count)", "days between two purchase days", ivL, ivV),
		"Segments":     barChart("segments", "members", "segment (by purchase days; VIP: top spenders who came back)", segL[:4], segV[:4]),
		"Statuses":     barChart("statuses", "members", "status (by absence; buyers only)", segL[4:], segV[4:]),
		"Cohorts":      lineChart("cohorts", "share repeated", "months since first purchase", names, series),
		"PAlive":       barChart("palive", "members", "P(active) from BG/NBD", paL, paV),
		"Matrix":       matrix,
		"Uplift":       money(r.Uplift.ExtraRevenue),
		"UpliftPct":    bp(r.Uplift.GrowthBP),
		"Campaign":     r.campaignView(),
	})
}
