package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/loyalty-terminal/loyalty/cmd/internal/apiclient"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/ledger/export"
	"github.com/loyalty-terminal/loyalty/ledger/replica"
)

// client is loyaltyctl's view of the daemon: the API client plus how to
// print answers.
type client struct {
	*apiclient.Client
	json   bool
	out    io.Writer
	errOut io.Writer
	// ledgerGiven: -ledger (or LOYALTY_LEDGER) was given; backup and
	// export say that it does not apply while loyaltyd answers.
	ledgerGiven bool
}

// daemonsLedger tells the user that the running daemon's ledger is the
// one copied or exported, whatever -ledger named (it is for when no
// daemon runs).
func (c *client) daemonsLedger(what string) {
	if c.ledgerGiven {
		fmt.Fprintf(c.errOut, "loyaltyctl: loyaltyd is running: %s of its ledger; -ledger applies only when no daemon runs\n", what)
	}
}

func newClient(addr, socket, token, caFile string, jsonOut bool) *client {
	return &client{Client: apiclient.New(apiclient.Options{Addr: addr, Socket: socket, Token: token, CAFile: caFile}),
		json: jsonOut, out: os.Stdout, errOut: os.Stderr}
}

// call does a JSON request and prints the answer: indented JSON with
// --json, otherwise through show.
func (c *client) call(method, path string, body any, show func(map[string]any)) error {
	resp, err := c.Do(method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if c.json || show == nil {
		_, err := c.out.Write(raw)
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	show(m)
	return nil
}

// compactJSON prints a JSON object on one line.
func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// str prints a JSON value, nothing for a missing one.
func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func (c *client) status() error {
	return c.call("GET", "/v1/status", nil, func(m map[string]any) {
		fmt.Fprintf(c.out, "register   %v (store %v), loyaltyd %v, up %vs\n", m["register"], m["store"], m["version"], m["uptime_s"])
		fmt.Fprintf(c.out, "clock      trusted=%v", m["clock_trusted"])
		if f := str(apiclient.Field(m, "clock", "fault")); f != "" {
			fmt.Fprintf(c.out, " FAULT %s: wall %v, trusted time seen %v (expiry waits; `loyaltyctl clock confirm` if the clock is right)", f, apiclient.Field(m, "clock", "wall"), apiclient.Field(m, "clock", "high_water"))
		}
		if n, ok := apiclient.Field(m, "clock", "uncorrected").(float64); ok && n > 0 {
			fmt.Fprintf(c.out, " uncorrected=%v", n)
		}
		fmt.Fprintln(c.out)
		if note := str(m["clock_note"]); note != "" {
			fmt.Fprintf(c.out, "           %s\n", note)
		}
		fmt.Fprintf(c.out, "sync       %v", apiclient.Field(m, "sync", "summary"))
		if e := str(apiclient.Field(m, "sync", "last_error")); e != "" {
			fmt.Fprintf(c.out, " (%s)", e)
		}
		if apiclient.Field(m, "sync", "enabled") == false {
			fmt.Fprint(c.out, " (sync.enabled is false: this register works alone and nothing goes to head office)")
		}
		fmt.Fprintln(c.out)
		if cv, ok := apiclient.Field(m, "sync", "config").(map[string]any); ok {
			fmt.Fprintf(c.out, "config     head office's versions in force: %s\n", compactJSON(cv))
		}
		if h, ok := apiclient.Field(m, "sync", "held").(map[string]any); ok {
			fmt.Fprintf(c.out, "HELD       head office holds %v events of this register (%v): %v\n", h["events"], h["reason"], h["text"])
		}
		if o := str(apiclient.Field(m, "sync", "other_ledger")); o != "" {
			fmt.Fprintf(c.out, "WARNING    %s\n", o)
		}
		if o := str(apiclient.Field(m, "sync", "takeover")); o != "" {
			fmt.Fprintf(c.out, "WARNING    %s\n", o)
		}
		if o := str(apiclient.Field(m, "sync", "renumbered")); o != "" {
			fmt.Fprintf(c.out, "RESTORED   %s\n", o)
		}
		if o := str(apiclient.Field(m, "sync", "replaced")); o != "" {
			fmt.Fprintf(c.out, "REPLACED   %s\n", o)
		}
		if rp, ok := m["replica"].(map[string]any); ok {
			if rp["ok"] == true {
				fmt.Fprintf(c.out, "replica    ok in %v: copied up to %v, %v behind (what a card death would lose now), snapshot at %v\n", rp["dir"], rp["copied"], rp["behind"], rp["snapshot_seq"])
			} else {
				fmt.Fprintf(c.out, "WARNING    second copy failing since %v: %v; %v events not copied (sales go on)\n", rp["failing_since"], rp["error"], rp["behind"])
			}
			if w := str(rp["warning"]); w != "" {
				fmt.Fprintf(c.out, "WARNING    %s\n", w)
			}
		}
		if e := str(apiclient.Field(m, "sync", "config_error")); e != "" {
			fmt.Fprintf(c.out, "config     last document refused (the one in force stays): %s\n", e)
		}
		if f := str(apiclient.Field(m, "sync", "fault")); f != "" {
			fmt.Fprintf(c.out, "FAULT      %s\n", f)
		}
		if seq, ok := apiclient.Field(m, "sync", "members_seq").(float64); ok {
			fmt.Fprintf(c.out, "members    head office's summaries applied up to seq %.0f", seq)
			if e := str(apiclient.Field(m, "sync", "members_error")); e != "" {
				fmt.Fprintf(c.out, "; last refused: %s", e)
			}
			fmt.Fprintln(c.out)
		}
		fmt.Fprintf(c.out, "ledger     sales=%v members=%v outbox=%v last_seq=%v\n", apiclient.Field(m, "ledger", "sales"), apiclient.Field(m, "ledger", "members"), apiclient.Field(m, "ledger", "outbox_pending"), apiclient.Field(m, "ledger", "last_seq"))
		fmt.Fprintf(c.out, "checkout   %v\n", m["checkout"])
		if devs, ok := m["devices"].([]any); ok {
			for _, d := range devs {
				dm, _ := d.(map[string]any)
				fmt.Fprintf(c.out, "device     %v %v %v %s\n", dm["name"], dm["state"], dm["path"], strings.ReplaceAll(str(dm["last_error"]), "\n", "; "))
			}
		}
		if sims, ok := m["simulated_devices"].(map[string]any); ok {
			for n, p := range sims {
				fmt.Fprintf(c.out, "simulated  %s at %v (loyaltyctl scan -device %s CODE)\n", n, p, n)
			}
		}
	})
}

// showMember prints a member on one line; an erased member (no name, no
// aliases) printed "aliases <nil>".
func (c *client) showMember(m map[string]any) {
	fmt.Fprintln(c.out, memberLine(m))
}

func memberLine(m map[string]any) string {
	var aliases []string
	as, _ := apiclient.Field(m, "member", "aliases").([]any)
	for _, a := range as {
		aliases = append(aliases, str(a))
	}
	al := "none"
	if len(aliases) > 0 {
		al = strings.Join(aliases, " ")
	}
	return fmt.Sprintf("%v  %v  balance %v  tier %v  consent %v  aliases %s", apiclient.Field(m, "member", "id"), str(apiclient.Field(m, "member", "name")),
		m["balance"], str(apiclient.Field(m, "member", "tier")), apiclient.Field(m, "member", "consent", "given") == true, al)
}

// showStatement prints a member's point events with running sums, then how
// the balance comes about.
func (c *client) showStatement(m map[string]any) {
	fmt.Fprintf(c.out, "%v  %v\n", apiclient.Field(m, "member", "id"), apiclient.Field(m, "member", "name"))
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "seq\tkind\tpoints\trunning\tsale\tline\treason\twhen\t")
	lines, _ := m["lines"].([]any)
	for _, l := range lines {
		lm, _ := l.(map[string]any)
		when := str(lm["wall_time"])
		if lm["clock_trusted"] == false {
			when += " (clock not yet synchronised)"
		}
		fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%s\t%s\t%s\t%s\t\n", lm["seq"], lm["kind"], lm["points"], lm["running"], str(lm["sale_id"]), str(lm["line"]), str(lm["reason"]), when)
	}
	_ = tw.Flush()
	if hq := m["hq_balance"]; hq != nil {
		fmt.Fprintf(c.out, "head office: %v chain-wide (includes this register's events up to %v); balance here %v\n", hq, m["hq_covered"], m["balance"])
	} else {
		fmt.Fprintf(c.out, "no head-office figure yet; balance %v = the sum above\n", m["balance"])
	}
}

// showRefund prints what a refund or void gave back, not the sale's total.
func (c *client) showRefund(m map[string]any) {
	kind := "refund"
	if apiclient.Field(m, "refund", "void") == true {
		kind = "void"
	}
	lines, _ := apiclient.Field(m, "refund", "lines").([]any)
	fmt.Fprintf(c.out, "%s %v of sale %v: %d line(s), amount %v (minor units), points %v, balance %v", kind, apiclient.Field(m, "refund", "id"), apiclient.Field(m, "refund", "sale_id"),
		len(lines), apiclient.Field(m, "refund", "amount"), m["earned"], m["balance"])
	if m["replayed"] == true {
		fmt.Fprint(c.out, " (already recorded: nothing changed)")
	}
	fmt.Fprintln(c.out)
}

func (c *client) showSale(m map[string]any) {
	fmt.Fprintf(c.out, "sale %v: total %v, earned %v, redeemed %v, balance %v", apiclient.Field(m, "sale", "id"), apiclient.Field(m, "sale", "total"), m["earned"], m["redeemed"], m["balance"])
	if m["replayed"] == true {
		fmt.Fprint(c.out, " (already recorded: nothing changed)")
	}
	fmt.Fprintln(c.out)
}

// parseLines reads "sku:qty:price" arguments into sale lines.
func parseLines(args []string) ([]ledger.Line, error) {
	var out []ledger.Line
	for i, a := range args {
		p := strings.Split(a, ":")
		if len(p) != 3 {
			return nil, fmt.Errorf("line %q: want sku:quantity:unit_price (minor units), e.g. 4006381333931:2:250", a)
		}
		q, err1 := strconv.ParseInt(p[1], 10, 64)
		pr, err2 := strconv.ParseInt(p[2], 10, 64)
		if err1 != nil || err2 != nil || q <= 0 || pr < 0 {
			return nil, fmt.Errorf("line %q: want sku:quantity:unit_price with a positive integer quantity and a non-negative price in minor units", a)
		}
		out = append(out, ledger.Line{No: i + 1, SKU: p[0], Quantity: q, UnitPrice: ledger.Money(pr)})
	}
	if len(out) == 0 {
		return nil, errors.New("a sale needs at least one line sku:quantity:unit_price")
	}
	return out, nil
}

// refuseIfHeld explains why a file held by a running daemon is not opened.
func refuseIfHeld(path string, err error) error {
	if errors.Is(err, ledger.ErrLocked) {
		return fmt.Errorf("%s is held by a running loyaltyd, so it is not opened here (a second writer could damage it, and a check of a file being written is meaningless). Use `loyaltyctl backup -o copy.db` for a consistent copy and verify that, or stop the daemon first: %w", path, err)
	}
	return err
}

func openRO(path string) (*ledger.Ledger, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	l, err := ledger.Open(path, &ledger.Options{ReadOnly: true, LockTimeout: 500 * time.Millisecond})
	if err != nil {
		return nil, refuseIfHeld(path, err)
	}
	return l, nil
}

func verify(path string, out io.Writer, jsonOut bool) error {
	l, err := openRO(path)
	if err != nil {
		return err
	}
	defer l.Close()
	cerr := l.Check()
	st, _ := l.Stats()
	if jsonOut {
		res := map[string]any{"path": path, "ok": cerr == nil, "stats": st}
		if cerr != nil {
			res["error"] = cerr.Error()
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(out, string(b))
	} else if cerr == nil {
		fmt.Fprintf(out, "%s: ok (%d sales, %d members, %d point events, outbox %d pending)\n", path, st.Sales, st.Members, st.Events, st.OutboxPending)
	}
	if cerr != nil {
		return fmt.Errorf("%s: check failed: %w", path, cerr)
	}
	return nil
}

// backup writes a consistent copy through the daemon, or directly when no
// daemon holds the file, then checks the copy. Without force an outPath
// that appeared meanwhile is not replaced either.
func (c *client) backup(ledgerPath, outPath string, force, quiet bool) error {
	if outPath == "" {
		return fmt.Errorf("%w: backup needs -o FILE for the copy", errUsage)
	}
	if err := privateDir(outPath); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(outPath), ".backup-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	var n int64
	var bar *progressbar.ProgressBar
	resp, err := c.Do("GET", "/v1/backup", nil)
	switch {
	case err == nil:
		c.daemonsLedger("backup")
		size, _ := strconv.ParseInt(resp.Header.Get("X-Ledger-Size"), 10, 64)
		if size == 0 {
			size = -1
		}
		var w io.Writer = tmp
		if !quiet {
			bar = progressbar.DefaultBytes(size, "backup (online)")
			w = io.MultiWriter(tmp, bar)
		}
		n, err = io.Copy(w, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("backup download: %w", err)
		}
		if size > 0 && n != size {
			// The daemon's copy broke off after it had begun answering.
			return fmt.Errorf("backup download: got %d of the %d bytes loyaltyd announced; the copy broke off (see loyaltyd's log), nothing was kept", n, size)
		}
	case errors.Is(err, apiclient.ErrDaemonDown):
		l, oerr := openRO(ledgerPath)
		if oerr != nil {
			return oerr
		}
		var w io.Writer = tmp
		if !quiet {
			fi, _ := os.Stat(ledgerPath)
			bar = progressbar.DefaultBytes(fi.Size(), "backup (direct)")
			w = barWriter{io.MultiWriter(tmp, bar), bar}
		}
		n, err = l.Backup(w)
		l.Close()
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	default:
		return err
	}
	if bar != nil {
		// The copy holds the ledger's pages in use, which can be fewer
		// than the file's size the bar started from (it showed 98 kB,
		// then "65536 bytes written"): end it at what was written. The
		// bar redraws at most every few tens of milliseconds; without
		// Finish a fast copy leaves it showing 0%.
		bar.ChangeMax64(n)
		_ = bar.Finish()
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := verify(tmp.Name(), io.Discard, false); err != nil {
		return fmt.Errorf("the copy does not verify, not kept: %w", err)
	}
	if force {
		if err := os.Rename(tmp.Name(), outPath); err != nil {
			return err
		}
	} else if err := os.Link(tmp.Name(), outPath); err != nil { // never over a file
		if errors.Is(err, os.ErrExist) {
			return refuseExisting(outPath, false)
		}
		// A file system without hard links (a FAT stick): look again.
		if err := refuseExisting(outPath, false); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), outPath); err != nil {
			return err
		}
	}
	if err := durable.SyncDir(filepath.Dir(outPath)); err != nil {
		return err
	}
	if c.json {
		b, _ := json.Marshal(map[string]any{"path": outPath, "bytes": n, "verified": true})
		fmt.Fprintln(c.out, string(b))
	} else {
		if bar != nil {
			fmt.Fprintln(c.out) // below the progress bar
		}
		fmt.Fprintf(c.out, "backup written to %s (%d bytes, verified)\n", outPath, n)
	}
	return nil
}

// export writes sales or members as CSV or JSON lines, through the daemon
// or directly from the file when no daemon runs.
func (c *client) export(what, format, ledgerPath, outPath string, quiet bool) error {
	switch what {
	case "sales", "members", "refunds", "events":
	default:
		return fmt.Errorf("%w: export what? sales, members, refunds or events", errUsage)
	}
	if format != "csv" && format != "json" {
		return fmt.Errorf("%w: -format must be csv or json, not %q", errUsage, format)
	}
	run := func(w io.Writer, bar *progressbar.ProgressBar) error {
		if bar != nil {
			w = io.MultiWriter(w, bar)
		}
		resp, err := c.Do("GET", "/v1/export/"+what+"?format="+url.QueryEscape(format), nil)
		switch {
		case err == nil:
			c.daemonsLedger("export")
			_, err = io.Copy(w, resp.Body)
			resp.Body.Close()
		case errors.Is(err, apiclient.ErrDaemonDown):
			l, oerr := openRO(ledgerPath)
			if oerr != nil {
				return oerr
			}
			defer l.Close()
			switch what {
			case "sales":
				err = export.Sales(w, l, export.Format(format))
			case "members":
				err = export.Members(w, l, export.Format(format))
			case "refunds":
				err = export.Refunds(w, l, export.Format(format))
			case "events":
				err = export.PointEvents(w, l, export.Format(format))
			}
		}
		if err != nil {
			return err
		}
		if bar != nil {
			_ = bar.Finish()
			fmt.Fprintln(os.Stderr)
		}
		return nil
	}
	if outPath == "" || outPath == "-" {
		return run(c.out, nil)
	}
	// A file: the old export stays until the new one is complete and
	// synced (durable.WriteFile), also across a power cut.
	if err := privateDir(outPath); err != nil {
		return err
	}
	return durable.WriteFile(outPath, privateFile, func(w io.Writer) error {
		var bar *progressbar.ProgressBar
		if !quiet {
			bar = progressbar.DefaultBytes(-1, "export "+what)
		}
		return run(w, bar)
	})
}

// restoreReplica rebuilds the ledger at path from the second copy in dir
// (docs/operations.md "A second copy on the register").
func restoreReplica(dir, register, path string, out io.Writer) error {
	if dir == "" || register == "" {
		return fmt.Errorf("%w: restore-replica needs -from DIR and -register ID (or ledger.replica_dir and register.id in the config)", errUsage)
	}
	res, err := replica.Restore(dir, path, &ledger.Options{Register: register})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "restored %s from %s: snapshot up to event %d, %d events after it from the log (sent to head office with the next sync), last event %d",
		path, dir, res.SnapshotSeq, res.Recovered, res.LastSeq)
	if res.Torn {
		fmt.Fprint(out, "; the log's last line was cut short (its event had not been copied)")
	}
	fmt.Fprintln(out)
	return nil
}

// Exports and backups hold members' personal data and sales: they are
// created readable by their owner only (0600), and a folder loyaltyctl
// creates for them is 0750 (docs/security.md).
const (
	privateFile os.FileMode = 0o600
	privateDirs os.FileMode = 0o750
)

// privateDir creates the folder of path, with its missing parents, 0750.
func privateDir(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, privateDirs); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(dir))
}

// registerRestore asks the daemon for a new ledger incarnation that
// continues head office's stream for this register id (a ledger restored
// from a backup, or a fresh one on a register head office knows), then
// waits up to wait for head office: the incarnation numbered after its
// watermark, the store's members (summary stream), the config in force.
// Offline it says so: the register trades under the offline redemption
// limit and reconciles when it reaches head office.
func (c *client) registerRestore(wait time.Duration) error {
	var info map[string]any
	if err := c.call("POST", "/v1/register/restore", nil, func(m map[string]any) { info = m }); err != nil || info == nil {
		return err
	}
	fmt.Fprintf(c.out, "new incarnation %.8s for this ledger's events from its number %v on\n", str(info["incarnation"]), info["from_local"])
	deadline := time.Now().Add(wait)
	var sy, led map[string]any
	var lastSeq any
	stableSince := time.Now()
	for {
		var st map[string]any
		if err := c.get("/v1/status", &st); err != nil {
			return err
		}
		sy, _ = st["sync"].(map[string]any)
		led, _ = st["ledger"].(map[string]any)
		online := sy != nil && sy["online"] == true
		if seq := sy["members_seq"]; seq != lastSeq {
			lastSeq, stableSince = seq, time.Now()
		}
		numbered := str(sy["renumbered"]) != ""
		members := lastSeq != nil && lastSeq != float64(0) && time.Since(stableSince) > time.Second
		if online && numbered && members || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if sy == nil || sy["online"] != true {
		fmt.Fprintf(c.out, "OFFLINE    head office is not reachable: the register trades under the offline redemption limit and reconciles when it reaches head office; its new incarnation takes head office's numbers then (run loyaltyctl status to see)\n")
		return nil
	}
	if r := str(sy["renumbered"]); r != "" {
		fmt.Fprintf(c.out, "head office: %s\n", r)
	} else {
		fmt.Fprintf(c.out, "head office: no acknowledgement yet; the new incarnation waits for head office's watermark (loyaltyctl status shows RESTORED once numbered)\n")
	}
	fmt.Fprintf(c.out, "members: %v known, member-summary position %s\n", led["members"], compactJSON(sy["members_seq"]))
	if cfg, ok := sy["config"].(map[string]any); ok {
		fmt.Fprintf(c.out, "config in force: chain version %v, store version %v\n", cfg["chain"], cfg["store"])
	}
	return nil
}

// get reads a JSON answer into v.
func (c *client) get(path string, v any) error {
	resp, err := c.Do("GET", path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// barWriter writes through to a progress bar whose total becomes the
// backup's size once the ledger knows it (ledger.BackupSizer): the file
// on disk is larger by the space reserved after the data.
type barWriter struct {
	io.Writer
	bar *progressbar.ProgressBar
}

func (b barWriter) BackupSize(n int64) { b.bar.ChangeMax64(n) }
