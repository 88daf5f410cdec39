package hqreport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger/retention"
)

func runEval(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("report eval")
	cdnow := fs.String("cdnow", "", "CDNOW-format purchases file; required")
	calEnd := fs.String("cal-end", "1997-09-30", "last day of calibration")
	holdout := fs.Int("holdout-days", 273, "days of holdout after calibration (273 = 39 weeks)")
	doc := fs.String("doc", "", "write the evaluation document here (e.g. docs/retention-eval.md)")
	check := fs.Bool("check", false, "with --doc: fail if the document differs from a fresh run instead of writing it")
	jsonOut := fs.String("json", "", "also write the evaluation as JSON here")
	measured := fs.String("measured", "", "with --doc: a --json result of a file the project does not ship (the CDNOW master file), shown as a section measured by hand")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cdnow == "" {
		return fmt.Errorf("%w: report eval needs --cdnow FILE", ErrUsage)
	}
	end, err := time.Parse("2006-01-02", *calEnd)
	if err != nil {
		return fmt.Errorf("%w: --cal-end %q", ErrUsage, *calEnd)
	}
	raw, err := os.ReadFile(*cdnow)
	if err != nil {
		return fmt.Errorf("read purchases: %w", err)
	}
	ms, err := retention.ParseCDNOW(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ev, err := retention.Evaluate(ms, end, *holdout, &retention.Config{KeepZeroAmount: true})
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	ev.Input = filepath.Base(*cdnow)
	if *jsonOut != "" {
		if err := writeFileAtomic(*jsonOut, func(w io.Writer) error {
			e := json.NewEncoder(w)
			e.SetIndent("", "  ")
			return e.Encode(ev)
		}); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
	}
	var extra *retention.Eval
	if *measured != "" {
		b, err := os.ReadFile(*measured)
		if err != nil {
			return fmt.Errorf("eval: measured: %w", err)
		}
		extra = new(retention.Eval)
		if err := json.Unmarshal(b, extra); err != nil || len(extra.Rows) == 0 || extra.Input == "" {
			return fmt.Errorf("%w: --measured %s is not a report eval --json result (%v)", ErrUsage, *measured, err)
		}
	}
	var buf bytes.Buffer
	// The account of how the ranking was chosen is the sample's, with
	// its default split, and of nothing else.
	sample := IsCDNOWSample(raw) && *calEnd == fs.Lookup("cal-end").DefValue && *holdout == 273
	WriteEvalDoc(&buf, ev, extra, *measured, sample)
	if *doc == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	if *check {
		old, err := os.ReadFile(*doc)
		if err != nil {
			return fmt.Errorf("eval check: %w", err)
		}
		if !bytes.Equal(old, buf.Bytes()) {
			return fmt.Errorf("eval check: %s differs from a fresh run; regenerate it with: loyalty-hq report eval --cdnow %s --doc %s", *doc, *cdnow, *doc)
		}
		fmt.Fprintf(stdout, "%s matches a fresh run\n", *doc)
		return nil
	}
	if err := writeFileAtomic(*doc, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err }); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	writeTable(stdout, ev)
	fmt.Fprintf(stdout, "wrote %s\n", *doc)
	return nil
}

func writeTable(w io.Writer, ev *retention.Eval) {
	fmt.Fprintln(w, "| rule | flagged | precision | recall | F1 | AUC |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, r := range ev.Rows {
		fmt.Fprintf(w, "| %s | %d | %.3f | %.3f | %.3f | %.3f |\n", r.Rule, r.Flagged, r.Precision, r.Recall, r.F1, r.AUC)
	}
}

// best returns the row with the highest value of f, skipping the baseline
// row when skipBase (the baseline's recall of 1 is not a finding).
func best(ev *retention.Eval, f func(retention.EvalRow) float64, skipBase bool) retention.EvalRow {
	var b retention.EvalRow
	first := true
	for i, r := range ev.Rows {
		if skipBase && i == 0 {
			continue
		}
		if first || f(r) > f(b) {
			b, first = r, false
		}
	}
	return b
}

// cdnowSampleSHA256 is the SHA-256 of testdata/cdnow/CDNOW_sample.txt,
// the file the ranking model was chosen on.
const cdnowSampleSHA256 = "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a"

// IsCDNOWSample reports whether raw is, byte for byte, the CDNOW sample
// the project ships (testdata/cdnow/CDNOW_sample.txt), whatever its name.
func IsCDNOWSample(raw []byte) bool {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]) == cdnowSampleSHA256
}

// WriteEvalDoc writes docs/retention-eval.md. Every number and every
// "which rule wins" sentence comes from ev, so the document cannot drift
// from the data, except the account of how the ranking model was chosen
// on the CDNOW sample (the rounds, the trees' validation range from the
// exploration of round 5, the holdout reads, the goal): that is
// history, written here as text, and only when sample says ev is the
// evaluation of that very file (IsCDNOWSample) with its default
// calibration end and holdout; for any other input or split the
// document says that the account belongs to the sample and leaves it out.
// The test regenerates the document and compares. measured, when not
// nil, is the evaluation of a file the project does not ship (read from
// measuredPath), shown in a section of its own.
func WriteEvalDoc(w io.Writer, ev *retention.Eval, measured *retention.Eval, measuredPath string, sample bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("# Which \"sleeping\" rule? Evaluation on CDNOW")
	p("")
	measuredPath = repoPath(measuredPath)
	if measured != nil {
		p("Generated by `loyalty-hq report eval --cdnow %s --measured %s --doc docs/retention-eval.md`;", ev.Input, measuredPath)
	} else {
		p("Generated by `loyalty-hq report eval --cdnow %s --doc docs/retention-eval.md`;", ev.Input)
	}
	if sample {
		p("a test regenerates it (from `testdata/cdnow/CDNOW_sample.txt`) and fails if this file differs. Do not edit by hand.")
	} else {
		p("the input is not the CDNOW sample the project ships (`testdata/cdnow/CDNOW_sample.txt`), so the account of how the")
		p("ranking model was chosen on that sample, and how often its holdout was read (docs/retention-eval.md), is left out here.")
	}
	p("")
	p("## Set-up")
	p("")
	p("- Data: `%s`, %d purchase entries from %s to %s, %d customers with a purchase in calibration.", ev.Input, ev.Purchases, ev.FirstPurchase, ev.LastPurchase, ev.Members)
	p("- Calibration: purchases up to and including %s; holdout: the %d days (39 weeks) after, to %s.", ev.CalibrationEnd, ev.HoldoutDays, ev.HoldoutEnd)
	p("- Purchases are counted as purchase days (several on one day count once); CDNOW's 0.00 orders count as orders.")
	p("- Target: the member makes **no purchase in the holdout**. %d of %d members (%.1f%%) did not: that is the base rate.", ev.Positives, ev.Members, 100*float64(ev.Positives)/float64(ev.Members))
	p("- BG/NBD fitted on calibration (weeks): r=%.4f, alpha=%.4f, a=%.4f, b=%.4f, log-likelihood %.1f (published for the CDNOW sample: 0.2426, 4.4135, 0.7929, 2.4258, -9582.4).",
		ev.Model.R, ev.Model.Alpha, ev.Model.A, ev.Model.B, ev.Model.LogLik)
	p("- Rules are applied as of the calibration end. \"3 x own mean interval\" uses the population's median interval for members with one purchase day.")
	p("  Thresholds are the natural ones (0.5 for probabilities, 6 weeks as Square ships, 3 intervals as the source documents say), not tuned on the holdout.")
	p("- AUC ranks members by the score behind each rule (days absent, absence in own intervals, 1 - P(active), P(no purchase)); 0.5 is chance.")
	p("")
	p("## Results")
	p("")
	writeTable(w, ev)
	p("")
	p("## Reading")
	p("")
	f1 := best(ev, func(r retention.EvalRow) float64 { return r.F1 }, false)
	prec := best(ev, func(r retention.EvalRow) float64 { return r.Precision }, true)
	rec := best(ev, func(r retention.EvalRow) float64 { return r.Recall }, true)
	auc := best(ev, func(r retention.EvalRow) float64 { return r.AUC }, true)
	var fixed, pnone, palive, intervals, both retention.EvalRow
	for _, r := range ev.Rows {
		switch r.Sleep.Kind {
		case retention.SleepFixed:
			fixed = r
		case retention.SleepPNone:
			if r.Sleep.Intervals > 0 {
				both = r
			} else {
				pnone = r
			}
		case retention.SleepPAlive:
			palive = r
		case retention.SleepIntervals:
			intervals = r
		}
	}
	p("- **F1**: %s wins (%.3f). The fixed 6-week rule scores %.3f and flagging everyone %.3f.", f1.Rule, f1.F1, fixed.F1, ev.Rows[0].F1)
	p("- **Precision** (of those flagged, how many really did not come back): %s wins (%.3f).", prec.Rule, prec.Precision)
	p("- **Recall** (of those who did not come back, how many were flagged), baseline aside: %s wins (%.3f).", rec.Rule, rec.Recall)
	p("- **Ranking (AUC)**: %s wins (%.3f); fixed 6 weeks (days absent) %.3f, P(no purchase) %.3f, 3 x own interval %.3f.", auc.Rule, auc.AUC, fixed.AUC, pnone.AUC, intervals.AUC)
	p("- **P(active) < 0.5 is a poor sleeping rule** (F1 %.3f, AUC %.3f): BG/NBD gives every one-purchase member P(active) = 1,", palive.F1, palive.AUC)
	p("  and on CDNOW most members bought once and most of those never came back. P(no purchase in the window) does not have")
	p("  that blind spot: for one-purchase members it falls with their age, for repeaters it uses recency and frequency.")
	p("")
	p("On CDNOW most customers lapse (base rate %.1f%%), so any rule that flags nearly everyone has a high F1; the", 100*float64(ev.Positives)/float64(ev.Members))
	p("differences between the top rules are a few points, not a landslide. The fixed 6-week rule does well here because")
	p("CDNOW customers buy rarely and most never return, so 6 weeks of absence is nearly everyone at the calibration end; in a")
	p("shop whose customers come weekly the same 6 weeks would mean something else entirely, which is the point of each")
	p("customer's own rhythm.")
	p("")
	if rk := ev.Rank; rk != nil {
		writeRank(p, ev, rk, fixed, sample)
	}
	p("## Defaults chosen")
	p("")
	def := retention.DefaultSleepRule
	p("- **Sleeping** (product default): `%s` (%s): F1 %.4f vs %.3f for the fixed 6 weeks (best F1: %s),", ruleFlag(def), def, both.F1, fixed.F1, f1.Rule)
	p("  with precision %.3f vs %.3f and recall %.3f vs %.3f, and it adapts to each member's frequency and recency.", both.Precision, fixed.Precision, both.Recall, fixed.Recall)
	p("  Its AUC (%.3f) is %s the fixed rule's (%.3f): where only an order is needed (whom to call first), contact lists", both.AUC, cmpWord(both.AUC, fixed.AUC), fixed.AUC)
	p("  use the ranking below instead.")
	p("  The \"or 3 own intervals\" part is the source documents' rule and is not tuned here: it flags %d members the model", both.Flagged-pnone.Flagged)
	p("  alone does not (F1 %.4f with it, %.4f without). It is there for shops whose customers are far more regular than", both.F1, pnone.F1)
	p("  CDNOW's: BG/NBD assumes Poisson purchases, so a weekly shopper absent five weeks is still \"probably active\" to it,")
	p("  while the shopper's own rhythm says otherwise. It is also the fallback rule, so the sleeping set does not jump when")
	p("  the model cannot be used.")
	p("- **Fallback without a model** (fewer than 10 buyers, no repeaters, a fit that does not converge or is degenerate, and at the register):")
	p("  `intervals:3`, the source documents' three own intervals: precision %.3f (the best precision here: %s), so fewer", intervals.Precision, prec.Rule)
	p("  wasted offers, at a recall of %.3f. It needs no model, so the register can apply it from local history.", intervals.Recall)
	p("- **Ranking** of contact lists (whom to call first): %s, the best AUC here (%.3f).", auc.Rule, auc.AUC)
	p("- **Due**: a member is due at their own mean interval (offset 0, configurable with `--due-offset`, negative = earlier).")
	p("  The holdout cannot score timing (whether a reminder a few days earlier brings the purchase forward needs a contact")
	p("  experiment); the evidence above supports using each member's own rhythm, and the offset is the knob head office tunes")
	p("  by trying, as the source documents advise.")
	if measured != nil {
		writeMeasured(p, measured, measuredPath, sample)
	}
}

// writeMeasured is the section on a file the project does not ship: its
// figures come from a --json result kept in the repository, so the
// document still regenerates without the file.
func writeMeasured(p func(string, ...any), m *retention.Eval, path string, sample bool) {
	var fixed, rank retention.EvalRow
	for _, r := range m.Rows {
		switch {
		case r.Rule == retention.RankRuleName:
			rank = r
		case r.Sleep.Kind == retention.SleepFixed:
			fixed = r
		}
	}
	p("")
	p("## Measured by hand: `%s` (not shipped with the project)", m.Input)
	p("")
	p("This section was **run by hand** on a file the project does not ship, so no test reads it unless told where it is:")
	if sample {
		p("the canonical CDNOW master file (all customers of the cohort; the sample above is a tenth of them, so the two overlap). Its figures")
	} else {
		p("the canonical CDNOW master file (all customers of the cohort; the CDNOW sample, `testdata/cdnow/CDNOW_sample.txt`, is a tenth of them). Its figures")
	}
	p("are kept in `%s`; `TestCDNOWMasterFile` (cmd/loyalty-hq/internal/hqreport) recomputes them when the", path)
	p("environment variable `CDNOW_MASTER` names the file and fails if they differ. To repeat it:")
	p("")
	p("```")
	p("git --git-dir <a clone of github.com/CamDavidsonPilon/lifetimes> show HEAD:lifetimes/datasets/CDNOW_master.txt > /tmp/CDNOW_master.txt")
	p("loyalty-hq report eval --cdnow /tmp/CDNOW_master.txt --json %s", path)
	p("CDNOW_MASTER=/tmp/CDNOW_master.txt go test ./cmd/loyalty-hq/internal/hqreport -run TestCDNOWMasterFile")
	p("```")
	p("")
	p("- Data: `%s` (four fields and a header line), %d purchase entries from %s to %s, %d customers with a purchase in calibration;", m.Input, m.Purchases, m.FirstPurchase, m.LastPurchase, m.Members)
	p("  calibration to %s, holdout %d days to %s; %d of %d (%.1f%%) made no purchase in the holdout.", m.CalibrationEnd, m.HoldoutDays, m.HoldoutEnd, m.Positives, m.Members, 100*float64(m.Positives)/float64(m.Members))
	p("- BG/NBD fitted on calibration (weeks): r=%.4f, alpha=%.4f, a=%.4f, b=%.4f, log-likelihood %.1f.", m.Model.R, m.Model.Alpha, m.Model.A, m.Model.B, m.Model.LogLik)
	if m.Rank != nil && m.RankSelection != nil {
		p("- Ranking model: the rolling validation splits inside this file's calibration chose %s (validation AUC %.4f);", m.RankSelection.Chosen, m.RankSelection.ChosenAUC)
		p("  trained on %d rows (the latest cut-off %s). The CDNOW sample's choice, `retention.DefaultRankSpec`, is %s.", m.Rank.Members, m.Rank.Cut, retention.DefaultRankSpec)
		for _, c := range m.RankSelection.Candidates {
			if c.LeftOut != "" {
				p("  Left out of the selection here: %s (%s).", c.Spec, c.LeftOut)
			} else if c.Spec == retention.DefaultRankSpec {
				p("  The sample's choice scored %.4f on these validation splits.", c.ValidationAUC)
			}
		}
	}
	p("")
	p("| rule | flagged | precision | recall | F1 | AUC |")
	p("|---|---:|---:|---:|---:|---:|")
	for _, r := range m.Rows {
		p("| %s | %d | %.3f | %.3f | %.3f | %.3f |", r.Rule, r.Flagged, r.Precision, r.Recall, r.F1, r.AUC)
	}
	p("")
	p("The learned ranking %s days absent here: AUC %.4f against %.4f.", map[bool]string{true: "beats", false: "does not beat"}[rank.AUC > fixed.AUC], rank.AUC, fixed.AUC)
}

// repoPath shows a path given relative to a test's package folder as the
// repository-relative path a reader would type.
func repoPath(p string) string {
	p = filepath.ToSlash(p)
	for strings.HasPrefix(p, "../") {
		p = p[3:]
	}
	return p
}

func days(from, to string) int {
	a, _ := time.Parse("2006-01-02", from)
	b, _ := time.Parse("2006-01-02", to)
	return int(b.Sub(a).Hours() / 24)
}

func cmpWord(a, b float64) string {
	switch {
	case a > b:
		return "above"
	case a < b:
		return "below"
	}
	return "equal to"
}

// writeRank is the section on the ranking model: how it was trained, how
// its spec was chosen (every candidate's validation AUCs), how often the
// holdout was read, and its coefficients or feature importances.
// The account of the rounds is the CDNOW sample's history: written only
// when sample.
func writeRank(p func(string, ...any), ev *retention.Eval, rk *retention.RankModel, fixed retention.EvalRow, sample bool) {
	var rank retention.EvalRow
	for _, r := range ev.Rows {
		if r.Rule == retention.RankRuleName {
			rank = r
		}
	}
	p("## Ranking model: whom to call first")
	p("")
	p("A model of \"no purchase ahead\" (%s) trained on the calibration purchases only: features as of %s (%d days", rk.Spec, rk.Cut, days(rk.Cut, rk.End))
	p("before the calibration end), target \"no purchase from then to %s\" (%d of %d members); then applied as of %s to rank", rk.End, rk.Positives, rk.Members, ev.CalibrationEnd)
	if sample {
		p("members for the holdout. Nothing of the holdout is used. Its AUC is %.3f (%.4f) against %.3f for days absent; the issue's goal was 0.785.", rank.AUC, rank.AUC, fixed.AUC)
	} else {
		p("members for the holdout. Nothing of the holdout is used. Its AUC is %.3f (%.4f) against %.3f for days absent.", rank.AUC, rank.AUC, fixed.AUC)
	}
	switch rk.Spec.Model {
	case retention.RankTrees, retention.RankEnsemble:
		p("Trees: Newton boosting of the logistic loss, histogram splits over at most 32 quantile bins per feature, leaf penalty 1,")
		p("no sampling.")
	}
	if len(rk.Coef) > 0 {
		p("The logistic regression is fitted by Newton's method with a ridge penalty of %g per member on the coefficients.", rk.L2)
	}
	p("At its natural threshold (0.5) it flags nearly everyone, so it is a ranking, not a sleeping rule.")
	p("")
	if sel := ev.RankSelection; sel != nil && len(sel.Folds) > 0 {
		f0 := sel.Folds[0]
		if !sample {
			p("**How it was chosen.** By the rule fixed on the CDNOW sample (the best mean validation AUC, the earlier candidate")
			p("on an exact tie, never one left out), over the same candidates, on this input's own validation splits inside calibration.")
			p("")
		} else {
			p("**How it was chosen.** In five rounds; this is the fifth and last. Its candidates below, the rule (the best mean")
			p("validation AUC, the earlier candidate on an exact tie, never one left out) and every candidate's validation AUCs were")
			p("written into this document and landed on `main` (commit 4d2e45b, \"pre-registration, round 5\") before the holdout was")
			p("read for any of them. The candidates were drawn up on the validation splits of calibration only: the 4th round's")
			p("choice and the same with a stronger ridge; training rows pooled from 3 cut-offs 30 days apart (rolling origin: each")
			p("member gives a row per cut-off, features as of it, target \"no purchase in the %d days after it\"; without BG/NBD, which", rk.Horizon)
			p("cannot be fitted at the earliest cut-offs); a linear spline of recency; recency and the repeat span as shares of the")
			p("member's age; and all of them together. Gradient-boosted trees (depth 1 and 2, shrinkage 0.05) on the new features")
			p("and their means with logistic were scored on the same splits while the list was drawn up and stayed far below")
			p("(0.674 to 0.710, from that exploration, recorded in commit 4d2e45b and not recomputed here; in round 4 trees of")
			p("depth 2 and 3 and the means were candidates and lost on every split, 0.662 to 0.713): they are not candidates.")
			p("")
		}
		p("The candidates are compared on %d rolling validation splits inside calibration, ending %s. On each split every", len(sel.Folds), foldEnds(sel))
		p("candidate is trained as above but one split earlier (for the split ending %s: features as of %s, target to %s)", f0.End, f0.TrainCut, f0.ValidCut)
		p("and scored on the members as of %s, target \"no purchase from then to %s\" (%d of %d members). The best mean", f0.ValidCut, f0.End, f0.Positives, f0.Members)
		p("validation AUC is the model above: %s.", sel.Chosen)
		if sel.Chosen == retention.DefaultRankSpec {
			p("It is `retention.DefaultRankSpec`, the spec contact lists train.")
		} else {
			p("On this input that is not `retention.DefaultRankSpec` (%s, the CDNOW sample's choice, which contact lists train).", retention.DefaultRankSpec)
		}
		p("")
		writeSelectionTable(p, sel, 5)
		p("")
		p("Features: base is the first six of the model's features below; \"inter\" adds recency x repeat days, repeat days squared")
		p("and recency x age (all on the log scale); \"rhythm\" adds absence in own median intervals, days past the own mean")
		p("interval, the spend trend (last day's spend against the mean) and the mean age of the purchase days (recency weighted")
		p("by how many purchases are recent); \"spline\" adds a linear spline of log(1 + days since the last purchase) with knots")
		p("at 30, 90 and 180 days; \"ratio\" adds days since the last purchase and days from first to last purchase, each over days")
		p("since the first, and repeat days times the first; \"recent\" adds the purchase days and the share of spend in the last")
		p("91 days; \"bgnbd\" adds BG/NBD's P(alive) and P(no purchase in %d days) from a fit on the purchases up to the day the", rk.Horizon)
		p("features are taken.")
		p("")
		// What the table shows, said only when the figures say it.
		second := 0.0
		for _, c := range sel.Candidates {
			if c.LeftOut == "" && c.Spec != sel.Chosen {
				second = max(second, c.ValidationAUC)
			}
		}
		treesWorse := len(sel.Folds) > 0
		for f := range sel.Folds {
			var lin, tree float64
			for _, c := range sel.Candidates {
				if c.LeftOut != "" || f >= len(c.FoldAUC) {
					continue
				}
				if c.Spec.Model == retention.RankTrees {
					tree = max(tree, c.FoldAUC[f])
				} else if c.Spec.Model != retention.RankEnsemble {
					lin = max(lin, c.FoldAUC[f])
				}
			}
			treesWorse = treesWorse && tree > 0 && tree < lin
		}
		if sel.ChosenAUC-second < 0.001 {
			p("The best two candidates differ by %.5f in mean validation AUC: the splits cannot tell them apart, and the rule decides.", sel.ChosenAUC-second)
		}
		if treesWorse {
			p("The trees rank worse than the logistic regressions on every split. Their training rows are younger than the members")
			p("they are applied to (features as of 91 days earlier), and a tree cannot extrapolate in age or recency past the")
			p("training range (every older member falls in the last bin), while a logistic regression extends its slopes.")
		}
		p("")
		if sample {
			p("**Reading the holdout.** On the CDNOW sample the holdout has been read 5 times in total: while the base model was")
			p("built (round 1: five other feature sets and a 136-day split scored 0.776 to 0.783 there and were not shipped), after")
			p("round 2's selection, after round 3's (one validation split, which chose %s: %.4f), after round 4's", retention.EarlierRankSpec, ev.EarlierRankAUC)
			p("(rolling splits, eight candidates with trees, which chose %s: %.4f), and after", retention.PreviousRankSpec, ev.PreviousRankAUC)
			p("this one, once, after the pre-registration above. For the record (these numbers chose nothing): the model shipped")
			p("before any selection (base features, ridge 0.001, one cut-off) scores %.4f.", ev.BaseRankAUC)
			if rank.AUC >= 0.785 {
				p("The goal of 0.785 is reached by a model chosen without the holdout.")
			} else {
				p("**The goal of 0.785 is not reached** by a model chosen without the holdout; this figure is the honest result,")
				p("nothing is tuned on it, and this was the last pre-registered round.")
			}
			p("")
		}
	}
	if len(rk.Coef) > 0 {
		p("| feature | coefficient |")
		p("|---|---:|")
		p("| intercept | %.4f |", rk.Intercept)
		for i, f := range rk.Features {
			p("| %s | %.4f |", f, rk.Coef[i])
		}
		p("")
	}
	if len(rk.Importance) > 0 {
		p("| feature | share of the trees' split gain |")
		p("|---|---:|")
		for i, f := range rk.Features {
			p("| %s | %.3f |", f, rk.Importance[i])
		}
		p("")
	}
}

// writeSelectionTable is a selection's table: every candidate's mean
// validation AUC and its AUC on each split, the chosen one in bold.
// The mean is shown with digits decimals.
func writeSelectionTable(p func(string, ...any), sel *retention.RankSelection, digits int) {
	head, rule := "| candidate | mean validation AUC", "|---|---:"
	for _, f := range sel.Folds {
		head += " | to " + f.End
		rule += "|---:"
	}
	p("%s |", head)
	p("%s|", rule)
	for i, c := range sel.Candidates {
		mark := ""
		if c.Spec == sel.Chosen {
			mark = "**"
		}
		row := fmt.Sprintf("| %d %s | %s%.*f%s", i+1, c.Spec, mark, digits, c.ValidationAUC, mark)
		if c.LeftOut != "" {
			row = fmt.Sprintf("| %d %s | left out: %s", i+1, c.Spec, strings.ReplaceAll(c.LeftOut, "|", "/"))
			for range len(sel.Folds) - 1 {
				row += " | "
			}
		}
		for _, a := range c.FoldAUC {
			row += fmt.Sprintf(" | %.4f", a)
		}
		p("%s |", row)
	}
}

// foldEnds lists the splits' end days.
func foldEnds(sel *retention.RankSelection) string {
	var ends []string
	for _, f := range sel.Folds {
		ends = append(ends, f.End)
	}
	return strings.Join(ends, ", ")
}
