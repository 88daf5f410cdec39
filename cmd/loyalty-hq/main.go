// Command loyalty-hq is head office: it ingests every register's event
// stream (serve), publishes config documents to the registers
// (publish-config), and prints retention reports and contact lists
// (report, contacts). main only parses arguments and wires packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqreport"
	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqserve"
	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/protocol"
	"github.com/loyalty-terminal/loyalty/sync/signing"
	"github.com/loyalty-terminal/loyalty/sync/tlscheck"
)

var version = "dev"

const usage = `usage:
  loyalty-hq serve -config FILE [-check]        run head office (ingest, acks, summaries, fleet and status page); -check: config, signing key, password and dsn files, certificates only;
      store: FILE is bbolt (one process); postgres: {dsn_file: FILE} is PostgreSQL,
      where several serve workers share the work (docs/hq.md "Two deployments")
  loyalty-hq publish-config -config FILE DOC    validate DOC (rules and/or catalogue), sign it and publish it retained
                                                (refused unless newer than head office's record and the broker's copy)
  loyalty-hq republish-config -config FILE      publish again what head office's record holds in force (after a broker rebuild)
  loyalty-hq keys generate -out FILE            new signing key (mode 0600); prints the public key registers pin
  loyalty-hq keys public -key FILE              print the public key of a signing key
  loyalty-hq acl STORE/REGISTER ...             print the broker ACL (configs/mosquitto.acl) binding each register to its store
  loyalty-hq report   [-store FILE | -config FILE] ...   retention report (see 'loyalty-hq report -h')
  loyalty-hq contacts [-store FILE | -config FILE] ...   contact lists
      -config reads the live store while serve runs: PostgreSQL directly, a bbolt
      file through a snapshot from serve's status_addr (GET /snapshot)
  loyalty-hq register move -store FILE [-force] REGISTER STORE   confirm that REGISTER moved to STORE (with serve stopped;
                                                 -config FILE instead of -store: serve's store, on PostgreSQL while serve runs);
                                                 refused when none of its events sent under STORE is held, unless -force
  loyalty-hq register adopt -store FILE REGISTER INCARNATION
                                                confirm that REGISTER's new ledger INCARNATION replaces the old one
                                                (a replaced card; its held events are released and applied)
  loyalty-hq register gap -store FILE [-note TEXT] REGISTER FROM TO
                                                record that REGISTER's events FROM..TO are lost for good (head office
                                                restored from a backup, no register keeps them), so its stream goes on
  loyalty-hq members export -store FILE [-contacts FILE] [-o FILE] ID   everything head office holds about one member, as JSON (serve stopped; -config FILE: serve's store, on PostgreSQL while it runs)
  loyalty-hq members erase (-store FILE | -config FILE) [-contacts FILE] [-by NAME] ID
                                                erase a member's personal data at head office (GDPR art. 17; sales and
                                                points stay under the bare id) and ask its stores' registers to erase it too
                                                (bbolt: serve stopped; PostgreSQL: while serve runs)
  loyalty-hq members erasures (-store FILE | -config FILE)   every erasure and the registers that have not confirmed it
  loyalty-hq review [-json] -store FILE         list the events held for review: policy refusals, other ledgers, moves (with serve stopped; GET /review while it runs)
  loyalty-hq review approve|dismiss -store FILE REGISTER SEQ   apply a policy-held event, or leave it (or one held as reused) unapplied for good (serve stopped)
  (register and review take -config FILE instead of -store: serve's config; on PostgreSQL they run while serve runs)
  loyalty-hq version`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loyalty-hq:", err)
		os.Exit(exitCode(err))
	}
}

// usageError is a command line that could not be understood; its text
// says what to type.
type usageError string

func (e usageError) Error() string { return string(e) }

func usageErrorf(format string, a ...any) error { return usageError(fmt.Sprintf(format, a...)) }

// exitCode is loyalty-hq's exit status for what run returned: 0 done, 2 a
// command line that could not be understood, 1 anything else refused or
// failed (docs/hq.md "Commands").
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue), errors.Is(err, hqreport.ErrUsage):
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErrorf("no command\n%s", usage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "publish-config":
		return publishConfig(ctx, args[1:], stdout)
	case "republish-config":
		return republishConfig(ctx, args[1:], stdout)
	case "keys":
		return keys(args[1:], stdout)
	case "acl":
		if len(args) > 1 && isHelp(args[1]) {
			fmt.Fprintln(stdout, "usage: loyalty-hq acl STORE/REGISTER ...\n\nprints the broker ACL (configs/mosquitto.acl) binding each register to its store")
			return nil
		}
		regs, err := hq.ParseRegisterIDs(args[1:])
		if err != nil {
			return err
		}
		acl, err := hq.BrokerACL(regs)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, acl)
		return err
	case "report", "contacts":
		return report(ctx, args, stdout, stderr)
	case "register":
		return registerCmd(args[1:], stdout)
	case "review":
		return reviewCmd(args[1:], stdout)
	case "members":
		return membersCmd(args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "loyalty-hq", version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageErrorf("unknown command %q\n%s", args[0], usage)
}

func logger(cfg hqserve.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cmp(cfg.Log.Level, "info")))
	o := &slog.HandlerOptions{Level: lvl, ReplaceAttr: cardsafe.ReplaceAttr} // card numbers masked
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "--h" }

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "", "config file (see configs/loyalty-hq.example.yaml)")
	check := fs.Bool("check", false, "validate the config, the signing key, the broker password and postgres dsn files, and the broker certificates (expiry, key match, CA chain), and exit")
	if help, err := parseOp(fs, args, stdout, "usage: loyalty-hq serve -config FILE [-check]"); help || err != nil {
		return err
	}
	if *path == "" {
		return usageError("serve needs -config FILE (see configs/loyalty-hq.example.yaml)")
	}
	cfg, err := hqserve.Load(*path)
	if err != nil {
		return err
	}
	certs := tlscheck.Check(tlscheck.Files{Prefix: "broker.", CA: cfg.Broker.CAFile, Cert: cfg.Broker.CertFile, Key: cfg.Broker.KeyFile}, time.Now())
	if *check {
		if certs != nil {
			return fmt.Errorf("%s: %w", *path, certs)
		}
		// serve refuses a signing key it cannot use (missing, readable by
		// others, not Ed25519) at once; so does -check.
		if _, _, err := cfg.Keys(); err != nil {
			return fmt.Errorf("%s: %w", *path, err)
		}
		// Nor can it start without the broker's password file or the
		// database's connection string file (never printed).
		if _, err := cfg.Conn(); err != nil {
			return fmt.Errorf("%s: %w", *path, err)
		}
		if cfg.Postgres.DSNFile != "" {
			if _, err := cfg.DSN(); err != nil {
				return fmt.Errorf("%s: %w", *path, err)
			}
		}
		fmt.Fprintf(stderr, "%s: ok\n", *path)
		return nil
	}
	log := logger(cfg, stderr).With("version", version)
	if certs != nil {
		log.Error("the broker certificates will not work", "err", certs)
	}
	hup := make(chan os.Signal, 1) // SIGHUP would end serve silently: logged and ignored
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Warn("SIGHUP ignored: loyalty-hq serve does not reload; restart it to apply a new config")
		}
	}()
	return hqserve.Serve(ctx, cfg, log, nil)
}

func publishConfig(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("publish-config", flag.ContinueOnError)
	path := fs.String("config", "", "loyalty-hq config file (broker settings)")
	check := fs.Bool("check", false, "only validate the document, publish nothing")
	if help, err := parseOp(fs, args, stdout, "usage: loyalty-hq publish-config -config FILE DOC\n       loyalty-hq publish-config -check DOC"); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("publish-config needs one document: loyalty-hq publish-config -config FILE DOC.yaml")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	doc, err := hq.ParseConfig(data, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was published", fs.Arg(0), err)
	}
	if *check {
		fmt.Fprintf(stdout, "%s: valid (%s config version %d)\n", fs.Arg(0), doc.Scope, doc.ConfigVersion)
		return nil
	}
	if *path == "" {
		return usageError("publish-config needs -config FILE for the broker settings (or -check)")
	}
	cfg, err := hqserve.Load(*path)
	if err != nil {
		return err
	}
	conn, err := cfg.Conn()
	if err != nil {
		return err
	}
	signer, _, err := cfg.Keys()
	if err != nil {
		return err
	}
	rec, err := cfg.OpenRecord(ctx)
	if err != nil {
		return fmt.Errorf("%w; nothing was published", err)
	}
	defer rec.Close()
	p, err := hq.Publish(ctx, conn, signer, doc, &hq.PublishOptions{Record: rec.Docs, RecordRead: true, Recorder: rec.Recorder})
	if err != nil && p.Topic != "" {
		return fmt.Errorf("published %s config version %d, then: %w", doc.Scope, doc.ConfigVersion, err)
	} else if err != nil {
		return fmt.Errorf("%w; nothing was published", err)
	}
	fmt.Fprintf(stdout, "published %s config version %d on %s (retained)%s\n", doc.Scope, doc.ConfigVersion, hq.ConfigTopic(doc), piecesNote(p))
	return nil
}

func piecesNote(p hq.Published) string {
	if p.Pieces == 0 {
		return ""
	}
	s := fmt.Sprintf(", catalogue in %d pieces", p.Pieces)
	if p.Cleared > 0 {
		s += fmt.Sprintf(" (%d leftover pieces cleared)", p.Cleared)
	}
	return s
}

// republishConfig publishes again every document in head office's record
// (after a broker lost its retained messages).
func republishConfig(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("republish-config", flag.ContinueOnError)
	path := fs.String("config", "", "loyalty-hq config file (broker settings, store, signing key)")
	if help, err := parseOp(fs, args, stdout, "usage: loyalty-hq republish-config -config FILE"); help || err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 0 {
		return usageError("republish-config needs -config FILE and nothing else: loyalty-hq republish-config -config FILE")
	}
	cfg, err := hqserve.Load(*path)
	if err != nil {
		return err
	}
	conn, err := cfg.Conn()
	if err != nil {
		return err
	}
	signer, _, err := cfg.Keys()
	if err != nil {
		return err
	}
	rec, err := cfg.OpenRecord(ctx)
	if err != nil {
		return err
	}
	defer rec.Close()
	done, err := hq.Republish(ctx, conn, signer, rec.Docs)
	for _, p := range done {
		fmt.Fprintf(stdout, "republished config version %d on %s (retained)%s\n", p.Version, p.Topic, piecesNote(p))
	}
	if err != nil {
		return err
	}
	if len(done) == 0 {
		fmt.Fprintf(stdout, "head office's record (%s) holds no config document; nothing to republish\n", rec.From)
	}
	return nil
}

// keys generates a signing key or prints a key's public half.
func keys(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageErrorf("keys needs generate or public\n%s", usage)
	}
	if isHelp(args[0]) {
		fmt.Fprintln(stdout, "usage: loyalty-hq keys generate -out FILE\n       loyalty-hq keys public -key FILE")
		return nil
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "generate":
		out := fs.String("out", "", "file to write the private key to (created, mode 0600; never overwritten)")
		if help, err := parseOp(fs, args[1:], stdout, "usage: loyalty-hq keys generate -out FILE"); help || err != nil {
			return err
		}
		if *out == "" {
			return usageError("keys generate needs -out FILE")
		}
		k, err := signing.Generate(nil)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("keys generate: %w (an existing key is never overwritten)", err)
		}
		if _, err := f.Write(k.MarshalPEM()); err != nil {
			f.Close()
			os.Remove(*out)
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, k.Public())
		return nil
	case "public":
		path := fs.String("key", "", "the private key file")
		if help, err := parseOp(fs, args[1:], stdout, "usage: loyalty-hq keys public -key FILE"); help || err != nil {
			return err
		}
		k, err := signing.LoadSigner(*path)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, k.Public())
		return nil
	}
	return usageErrorf("unknown keys command %q\n%s", args[0], usage)
}

// report runs the retention engineer's report/contacts commands, over head
// office's store when -store (or -config) names it.
func report(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	storePath, cfgPath, rest := "", "", []string{args[0]}
	for i := 1; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "store" || name == "config") {
			if !hasVal {
				if i+1 >= len(args) {
					return usageErrorf("%s needs a value", a)
				}
				i++
				val = args[i]
			}
			if name == "store" {
				storePath = val
			} else {
				cfgPath = val
			}
			continue
		}
		rest = append(rest, a)
	}
	var cfg *hqserve.Config
	if storePath == "" && cfgPath != "" {
		c, err := hqserve.Load(cfgPath)
		if err != nil {
			return err
		}
		cfg, storePath = &c, c.Store
	}
	if cfg != nil && cfg.Postgres.DSNFile != "" {
		// A chain: read the live database directly.
		st, err := hqserve.OpenStore(*cfg, true)
		if err != nil {
			return err
		}
		defer st.Close()
		return hqreport.Run(ctx, hqreport.Env{Source: st, Members: st}, rest, stdout, stderr)
	}
	if storePath == "" {
		return hqreport.Main(ctx, rest, stdout, stderr)
	}
	st, err := hqstore.Open(storePath, &hqstore.Options{ReadOnly: true, LockTimeout: 2 * time.Second})
	if errors.Is(err, hqstore.ErrLocked) {
		// A shop whose serve holds the file: read a snapshot of the live
		// store from serve's status listener.
		if cfg == nil || cfg.StatusAddr == "off" {
			return fmt.Errorf("%w: loyalty-hq serve holds the store; run with -config (serve's config, status_addr on) to read a snapshot of the live store, or stop serve", err)
		}
		path, cleanup, serr := hqserve.FetchSnapshot(ctx, *cfg)
		if serr != nil {
			return fmt.Errorf("%w; reading a snapshot from serve: %w", err, serr)
		}
		defer cleanup()
		st, err = hqstore.Open(path, &hqstore.Options{ReadOnly: true})
	}
	if err != nil {
		return err
	}
	defer st.Close()
	return hqreport.Run(ctx, hqreport.Env{Source: st, Members: st}, rest, stdout, stderr)
}

// registerCmd runs the register commands: move confirms at head office
// that a register now belongs to another store (docs/operations.md
// "Moving a register"), adopt that a register's new ledger replaces the
// one head office follows ("Replacing a register"), gap that a register's
// events FROM..TO are lost for good ("Restoring head office from a
// backup"). On a bbolt store they run while serve is stopped (it holds
// the file); on PostgreSQL (-config) beside the workers.
func registerCmd(args []string, stdout io.Writer) error {
	verb := ""
	if len(args) > 0 {
		verb, args = args[0], args[1:]
	}
	const where = "-store FILE|-config FILE"
	fs := flag.NewFlagSet("register "+verb, flag.ContinueOnError)
	sf := addStoreFlags(fs)
	var use string
	var note *string
	var force *bool
	if isHelp(verb) {
		fmt.Fprintln(stdout, "usage: loyalty-hq register move "+where+" REGISTER STORE\n       loyalty-hq register adopt "+where+" REGISTER INCARNATION\n       loyalty-hq register gap "+where+" [-note TEXT] REGISTER FROM TO")
		return nil
	}
	switch verb {
	case "move":
		use = "usage: loyalty-hq register move " + where + " [-force] REGISTER STORE"
		force = fs.Bool("force", false, "move even though head office holds none of the register's events sent under STORE (a move confirmed before the register sent anything)")
	case "adopt":
		use = "usage: loyalty-hq register adopt " + where + " REGISTER INCARNATION"
	case "gap":
		use = "usage: loyalty-hq register gap " + where + " [-note TEXT] REGISTER FROM TO"
		note = fs.String("note", "", "why (kept with the gap)")
	default:
		return usageErrorf("register needs move, adopt or gap\n%s", usage)
	}
	if help, err := parseOp(fs, args, stdout, use); help || err != nil {
		return err
	}
	want := 2
	if verb == "gap" {
		want = 3
	}
	if !sf.named() || fs.NArg() != want {
		return usageError(use)
	}
	reg := fs.Arg(0)
	ids := []string{reg}
	if verb != "gap" {
		ids = append(ids, fs.Arg(1))
	}
	for _, id := range ids {
		if err := protocol.ValidID(id); err != nil {
			return err
		}
	}
	switch verb {
	case "move":
		to := fs.Arg(1)
		return sf.withStore(false, func(st hqstore.Backend) error {
			n, err := st.MoveRegister(reg, to, *force)
			if err == nil {
				fmt.Fprintf(stdout, "register %s now belongs to store %s; %d held events released (the register resends them)\n", reg, to, n)
			}
			return err
		})
	case "adopt":
		inc := fs.Arg(1)
		return sf.withStore(false, func(st hqstore.Backend) error {
			n, err := st.AdoptIncarnation(reg, inc)
			if err == nil {
				fmt.Fprintf(stdout, "register %s: head office now follows ledger %s; %d held events released (the register resends them)\n", reg, inc, n)
			}
			return err
		})
	}
	from, err1 := strconv.ParseUint(fs.Arg(1), 10, 64)
	to, err2 := strconv.ParseUint(fs.Arg(2), 10, 64)
	if err1 != nil || err2 != nil || from == 0 {
		return usageErrorf("FROM and TO are sequence numbers (as the register's status names them)\n%s", use)
	}
	return sf.withStore(false, func(st hqstore.Backend) error {
		g, err := st.AcknowledgeGap(reg, from, to, *note)
		if err == nil {
			fmt.Fprintf(stdout, "register %s: events %d..%d recorded as lost; %d held events after them applied; the register goes on when serve runs again\n",
				reg, g.From, g.To, g.Released)
		}
		return err
	})
}
