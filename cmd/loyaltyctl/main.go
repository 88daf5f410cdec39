// Command loyaltyctl is the register's local command line for cashiers,
// installers and support: status, members, sales and refunds, simulated
// scans, ledger verification, backups and exports. It talks to loyaltyd's
// local API; verify, backup and export also work on the ledger file directly
// when no daemon is running (and refuse a file a running daemon holds).
//
// It finds the daemon's address, socket, token and ledger in the daemon's
// config file (-config, env LOYALTY_CONFIG, else /etc/loyalty/loyaltyd.yaml,
// else configs/loyaltyd.dev.yaml in the current folder as under `make run`);
// flags and their environment variables override what the config says.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/loyalty-terminal/loyalty/cmd/internal/apiclient"
)

var version = "dev"

const usageHead = `usage: loyaltyctl [global flags] COMMAND [flags] [args]
       loyaltyctl COMMAND -h     help for one command

commands:
`

const usageFoot = `
Flags and arguments of a command may come in any order; the global
flags below may stand before or after the command (a command's own flag
of the same name, such as ledger verify -ledger, is the command's).
Exit status: 0 done, 1 refused or failed (the reason is printed), 2 usage.

global flags:
`

// errUsage marks a command line that could not be understood (exit 2).
var errUsage = errors.New("usage")

// errHelp means -h was asked for and the help was printed (exit 0).
var errHelp = errors.New("help printed")

// command is one loyaltyctl command.
type command struct {
	name  string
	args  string // synopsis after the name
	short string // one line for the command list
	long  string // optional extra help
	// flags declares the command's flags; run does the work with the
	// positional arguments.
	flags func(fs *flag.FlagSet, v *cmdFlags)
	run   func(e *env, v *cmdFlags, args []string) error
}

// cmdFlags holds every command's flag values (each command uses a few).
type cmdFlags struct {
	id, member, reason, device, output, format, name, phone, lang, birthday, channel string
	consent, given, withdraw, force                                                  bool
	aliases                                                                          multi
	wait                                                                             time.Duration
}

// env is what every command gets: the API client and where things are.
type env struct {
	c          *client
	ledgerPath string
	quiet      bool
	// register and replica come from the daemon's config.
	register, replica string
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	gf := flag.NewFlagSet("loyaltyctl", flag.ContinueOnError)
	gf.SetOutput(stderr)
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usageHead)
		for _, c := range cmds {
			fmt.Fprintf(w, "  %-34s %s\n", strings.TrimSpace(c.name+" "+c.args), c.short)
		}
		fmt.Fprint(w, usageFoot)
		gf.SetOutput(w)
		gf.PrintDefaults()
		gf.SetOutput(stderr)
	}
	// The flag package calls Usage on -h too: print it ourselves, on
	// stdout for -h and on stderr for a global flag it could not parse.
	gf.Usage = func() {}
	cfgPath := gf.String("config", os.Getenv("LOYALTY_CONFIG"), "loyaltyd's config file, read for the API address, socket, token and ledger (env LOYALTY_CONFIG; default /etc/loyalty/loyaltyd.yaml, else ./configs/loyaltyd.dev.yaml)")
	addr := gf.String("addr", os.Getenv("LOYALTY_API"), "loyaltyd API base URL (env LOYALTY_API; default from the config, else http://127.0.0.1:8080)")
	socket := gf.String("socket", os.Getenv("LOYALTY_SOCKET"), "loyaltyd unix socket instead of -addr (env LOYALTY_SOCKET; default from the config)")
	token := gf.String("token", os.Getenv("LOYALTY_TOKEN"), "API token for a remote daemon (env LOYALTY_TOKEN)")
	jsonOut := gf.Bool("json", false, "print JSON for scripts")
	quiet := gf.Bool("quiet", false, "no progress bars")
	ledgerPath := gf.String("ledger", os.Getenv("LOYALTY_LEDGER"), "ledger file for direct access (env LOYALTY_LEDGER; default from the config, else /var/lib/loyalty/ledger.db)")
	if err := gf.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		printUsage(stderr)
		return 2
	}
	rest := gf.Args()
	if len(rest) == 0 {
		printUsage(stderr)
		return 2
	}
	if rest[0] == "help" {
		if len(rest) > 1 {
			if c := find(cmds, rest[1]); c != nil {
				printCommandUsage(stdout, c, nil)
				return 0
			}
		}
		printUsage(stdout)
		return 0
	}
	rest, err := hoistGlobals(gf, cmds, rest)
	if err != nil {
		fmt.Fprintf(stderr, "loyaltyctl: %v\n", err)
		return 2
	}
	target, err := resolveTarget(*cfgPath, *addr, *socket, *token, *ledgerPath)
	if err != nil {
		fmt.Fprintf(stderr, "loyaltyctl: %v\n", err)
		return 2
	}
	c := newClient(target.addr, target.socket, target.token, target.caFile, *jsonOut)
	c.out, c.errOut = stdout, stderr
	c.ledgerGiven = *ledgerPath != ""
	e := &env{c: c, ledgerPath: target.ledger, quiet: *quiet, register: target.register, replica: target.replica}
	err = dispatch(e, cmds, rest[0], rest[1:])
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	err = maskedErr{err} // never print a card number, whatever quoted it
	var ae *apiclient.Error
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "loyaltyctl: %v\n", err)
		return 2
	case errors.As(err, &ae) && *jsonOut:
		fmt.Fprintf(stdout, "{\"code\":%q,\"message\":%q}\n", ae.Code, ae.Message)
	case errors.Is(err, apiclient.ErrDaemonDown):
		fmt.Fprintf(stderr, "loyaltyctl: %v\n(start it with `make run` or `systemctl start loyaltyd`, or point -addr/-socket/-config at it; using %s)\n", err, target.describe())
	default:
		fmt.Fprintf(stderr, "loyaltyctl: %v\n", err)
	}
	return 1
}

func find(cmds []*command, name string) *command {
	if name == "enroll" || name == "member enroll" {
		name = "member enrol"
	}
	for _, c := range cmds {
		if c.name == name {
			return c
		}
	}
	return nil
}

// isGroup: the command's name has a second word ("member enrol").
func isGroup(first string) bool {
	return first == "member" || first == "ledger" || first == "clock" || first == "register"
}

// dispatch finds the command (one word, or two for "member ...",
// "ledger ..." and "clock ..."), parses its flags wherever they stand, and
// runs it.
func dispatch(e *env, cmds []*command, first string, args []string) error {
	name := first
	group := isGroup(first)
	if group {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			if len(args) > 0 && isHelp(args[0]) {
				for _, c := range cmds {
					if strings.HasPrefix(c.name, first+" ") {
						printCommandUsage(e.c.out, c, nil)
					}
				}
				return errHelp
			}
			return fmt.Errorf("%w: %s needs a subcommand: %s", errUsage, first, subcommands(cmds, first))
		}
		name, args = first+" "+args[0], args[1:]
	}
	c := find(cmds, name)
	if c == nil {
		if group {
			return fmt.Errorf("%w: unknown command %q; %s has: %s", errUsage, name, first, subcommands(cmds, first))
		}
		return fmt.Errorf("%w: unknown command %q (see loyaltyctl -h)", errUsage, name)
	}
	fs := flag.NewFlagSet("loyaltyctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v := &cmdFlags{}
	if c.flags != nil {
		c.flags(fs, v)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(e.c.out, c, fs)
		return errHelp
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v (see loyaltyctl %s -h)", errUsage, c.name, err, c.name)
	}
	return c.run(e, v, pos)
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "--h" }

func subcommands(cmds []*command, first string) string {
	var s []string
	for _, c := range cmds {
		if rest, ok := strings.CutPrefix(c.name, first+" "); ok {
			s = append(s, rest)
		}
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// hoistGlobals takes the global flags (gf's) that stand after the
// command out of args = [command, args...] and sets them, so that
// "loyaltyctl status -json" is "loyaltyctl -json status". A flag the
// command has itself stays the command's; "--" ends the flags.
func hoistGlobals(gf *flag.FlagSet, cmds []*command, args []string) ([]string, error) {
	if len(args) == 0 {
		return args, nil
	}
	own := map[string]bool{} // the command's flags: whether each takes a value
	name, skip := args[0], 1
	if len(args) > 1 && isGroup(name) {
		name, skip = name+" "+args[1], 2
	}
	if c := find(cmds, name); c != nil && c.flags != nil {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs, &cmdFlags{})
		fs.VisitAll(func(f *flag.Flag) { own[f.Name] = !isBoolFlag(f) })
	}
	out := append([]string(nil), args[:skip]...)
	for i := skip; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		n, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		g := gf.Lookup(n)
		if takesValue, ok := own[n]; ok && strings.HasPrefix(a, "-") {
			// The command's own flag, with its value if it takes one
			// ("-reason -quiet": -quiet is the reason).
			out = append(out, a)
			if takesValue && !hasVal && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		if !strings.HasPrefix(a, "-") || a == "-" || g == nil {
			out = append(out, a)
			continue
		}
		if !hasVal {
			if isBoolFlag(g) {
				val = "true"
			} else if i+1 < len(args) {
				i++
				val = args[i]
			} else {
				return nil, fmt.Errorf("flag needs an argument: -%s", n)
			}
		}
		if err := gf.Set(n, val); err != nil {
			return nil, fmt.Errorf("invalid value %q for flag -%s: %v", val, n, err)
		}
	}
	return out, nil
}

// isBoolFlag: the flag needs no value (-json, -quiet).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parseInterspersed parses flags that may stand before, between or after
// the positional arguments ("refund SALE -id X 1:1" and "refund -id X SALE
// 1:1" are the same). "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// Parse stops at the first positional argument, or after a "--"
		// it consumes: then everything left is positional.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: loyaltyctl %s %s\n\n%s\n", c.name, c.args, c.short)
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.long))
	}
	if fs == nil {
		fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
		if c.flags != nil {
			c.flags(fs, &cmdFlags{})
		}
	}
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

func commands() []*command {
	return []*command{
		{name: "status", short: "register, devices, ledger, sync, clock trust, config in force",
			run: func(e *env, _ *cmdFlags, args []string) error {
				if err := noArgs("status", args); err != nil {
					return err
				}
				return e.c.status()
			}},
		{name: "register restore", args: "[-wait 30s]", short: "after restoring the ledger from a backup or on a fresh one: continue head office's stream for this register id under a new incarnation, wait for it, the store's members and the config in force",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.DurationVar(&v.wait, "wait", 30*time.Second, "how long to wait for head office")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if err := noArgs("register restore", args); err != nil {
					return err
				}
				return e.c.registerRestore(v.wait)
			}},
		{name: "clock confirm", short: "confirm that the synchronised clock is right despite a clock fault (expiry runs again)",
			run: func(e *env, _ *cmdFlags, args []string) error {
				if err := noArgs("clock confirm", args); err != nil {
					return err
				}
				return e.c.call("POST", "/v1/clock/confirm", nil, func(m map[string]any) {
					fmt.Fprintf(e.c.out, "clock confirmed: %v (trusted=%v)\n", m["wall"], m["trusted"])
				})
			}},
		{name: "member lookup", args: "ALIAS", short: "find a member by card number, phone or member id",
			run: func(e *env, _ *cmdFlags, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("%w: member lookup takes one ALIAS (card number, phone or member id)", errUsage)
				}
				return e.c.call("GET", "/v1/members?alias="+url.QueryEscape(args[0]), nil, e.c.showMember)
			}},
		{name: "member statement", args: "ALIAS", short: "every point event of a member with its sale, reason and running balance",
			run: func(e *env, _ *cmdFlags, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("%w: member statement takes one ALIAS (card number, phone or member id)", errUsage)
				}
				return e.c.call("GET", "/v1/members/"+url.PathEscape(args[0])+"/statement", nil, e.c.showStatement)
			}},
		{name: "member enrol", args: "-id ID -name NAME [-alias A]... [-phone P] [-lang L] [-birthday D] [-consent]", short: "enrol a new member (idempotent by id)",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.StringVar(&v.id, "id", "", "member id (e.g. the card number)")
				fs.StringVar(&v.name, "name", "", "name")
				fs.StringVar(&v.phone, "phone", "", "phone (also an alias)")
				fs.StringVar(&v.lang, "lang", "", "language for display and kiosk (en, he, bg)")
				fs.StringVar(&v.birthday, "birthday", "", "YYYY-MM-DD or --MM-DD")
				fs.BoolVar(&v.consent, "consent", false, "agrees to be contacted")
				fs.Var(&v.aliases, "alias", "card number or other alias (repeatable)")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if err := noArgs("member enrol", args); err != nil {
					return err
				}
				if v.id == "" {
					return fmt.Errorf("%w: member enrol needs -id (e.g. the card number printed on the card)", errUsage)
				}
				aliases := append([]string(nil), v.aliases...)
				if len(aliases) == 0 && v.id != "" {
					aliases = append(aliases, v.id)
				}
				if v.phone != "" {
					aliases = append(aliases, v.phone)
				}
				m := map[string]any{"id": v.id, "name": v.name, "aliases": aliases, "language": v.lang, "birthday": v.birthday,
					"contact": map[string]any{"phone": v.phone}}
				if v.consent {
					m["consent"] = map[string]any{"given": true, "channel": "in-store"}
				}
				return e.c.call("POST", "/v1/members", m, e.c.showMember)
			}},
		{name: "member consent", args: "ID -given|-withdraw [-channel C]", short: "record a member's consent or its withdrawal",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.BoolVar(&v.given, "given", false, "consent given")
				fs.BoolVar(&v.withdraw, "withdraw", false, "consent withdrawn")
				fs.StringVar(&v.channel, "channel", "in-store", "how: in-store, api, web, paper")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("%w: member consent takes one member ID", errUsage)
				}
				if v.given == v.withdraw {
					return fmt.Errorf("%w: say -given or -withdraw", errUsage)
				}
				return e.c.call("PUT", "/v1/members/"+url.PathEscape(args[0])+"/consent", map[string]any{"given": v.given, "channel": v.channel}, e.c.showMember)
			}},
		{name: "sale", args: "-id ID [-member ALIAS] SKU:QTY:PRICE...", short: "record a sale (idempotent by id; prices in minor units)",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.StringVar(&v.id, "id", "", "sale id (idempotency key)")
				fs.StringVar(&v.member, "member", "", "member card, phone or id")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if v.id == "" {
					return fmt.Errorf("%w: sale needs -id (the idempotency key, e.g. the POS receipt number)", errUsage)
				}
				lines, err := parseLines(args)
				if err != nil {
					return fmt.Errorf("%w: %v", errUsage, err)
				}
				return e.c.call("POST", "/v1/sales", map[string]any{"id": v.id, "member": v.member, "lines": lines}, e.c.showSale)
			}},
		{name: "refund", args: "SALE -id ID [LINE:QTY]...", short: "refund a sale, whole or by line; prints what was refunded",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.StringVar(&v.id, "id", "", "idempotency key of the refund")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if len(args) == 0 {
					return fmt.Errorf("%w: refund needs the SALE id", errUsage)
				}
				if v.id == "" {
					return fmt.Errorf("%w: refund needs -id (the refund's idempotency key)", errUsage)
				}
				var lines []map[string]any
				for _, a := range args[1:] {
					var no int
					var q int64
					if _, err := fmt.Sscanf(a, "%d:%d", &no, &q); err != nil {
						return fmt.Errorf("%w: refund line %q: want LINE:QUANTITY, e.g. 1:2", errUsage, a)
					}
					lines = append(lines, map[string]any{"no": no, "quantity": q})
				}
				return e.c.call("POST", "/v1/sales/"+url.PathEscape(args[0])+"/refund", map[string]any{"id": v.id, "lines": lines}, e.c.showRefund)
			}},
		{name: "void", args: "SALE -id ID -reason TEXT", short: "void a whole sale",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.StringVar(&v.id, "id", "", "idempotency key of the void")
				fs.StringVar(&v.reason, "reason", "", "why")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("%w: void takes one SALE id", errUsage)
				}
				if v.id == "" || v.reason == "" {
					return fmt.Errorf("%w: void needs -id (the void's idempotency key) and -reason", errUsage)
				}
				return e.c.call("POST", "/v1/sales/"+url.PathEscape(args[0])+"/void", map[string]any{"id": v.id, "reason": v.reason}, e.c.showRefund)
			}},
		{name: "scan", args: "[-device NAME] CODE", short: "scan a code into a simulated scanner (or FACILITY-NUMBER into a simulated Wiegand reader); says what the till did, exit 1 when it refused",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.StringVar(&v.device, "device", "", "simulated scanner or Wiegand reader name (default: the first scanner)")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("%w: scan takes one CODE", errUsage)
				}
				// A refused scan is an error answer (exit 1, the till's message);
				// an accepted one says what was read and shown.
				return e.c.call("POST", "/v1/scan", map[string]any{"device": v.device, "code": args[0]}, func(m map[string]any) {
					fmt.Fprintln(e.c.out, scanLine(m))
				})
			}},
		{name: "ledger verify", args: "[-ledger PATH]", short: "check a ledger file (not one a running daemon holds)",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.StringVar(&v.output, "ledger", "", "ledger file (default: the global -ledger)")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if err := noArgs("ledger verify", args); err != nil {
					return err
				}
				return verify(pick(v.output, e.ledgerPath), e.c.out, e.c.json)
			}},
		{name: "ledger restore-replica", args: "[-from DIR] [-register ID] [-ledger PATH]", short: "rebuild the ledger from its second copy (daemon stopped; the ledger file must not exist)",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.StringVar(&v.name, "from", "", "the second copy's folder (default: ledger.replica_dir of the config)")
				fs.StringVar(&v.id, "register", "", "register.id (default: the config's)")
				fs.StringVar(&v.output, "ledger", "", "ledger file to create (default: the global -ledger)")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if err := noArgs("ledger restore-replica", args); err != nil {
					return err
				}
				return restoreReplica(pick(v.name, e.replica), pick(v.id, e.register), pick(v.output, e.ledgerPath), e.c.out)
			}},
		{name: "backup", args: "-o FILE [-force] [-ledger PATH]", short: "consistent, verified copy: online through the daemon, or direct from the file",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.StringVar(&v.output, "o", "", "output file (an existing one is refused without -force)")
				fs.BoolVar(&v.force, "force", false, "replace an existing -o file")
				fs.StringVar(&v.name, "ledger", "", "ledger file when no daemon runs (default: the global -ledger)")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if err := noArgs("backup", args); err != nil {
					return err
				}
				if err := refuseExisting(v.output, v.force); err != nil {
					return err
				}
				e.c.ledgerGiven = e.c.ledgerGiven || v.name != ""
				return e.c.backup(pick(v.name, e.ledgerPath), v.output, v.force, e.quiet || e.c.json)
			}},
		{name: "export", args: "sales|members|refunds|events [-format csv|json] [-o FILE [-force]] [-ledger PATH]", short: "sales (one row per line), members with balances, refunds and voids, or point events, as CSV or JSON lines",
			flags: func(fs *flag.FlagSet, v *cmdFlags) {
				fs.StringVar(&v.format, "format", "csv", "csv or json")
				fs.StringVar(&v.output, "o", "", "output file (default stdout; an existing one is refused without -force)")
				fs.BoolVar(&v.force, "force", false, "replace an existing -o file")
				fs.StringVar(&v.name, "ledger", "", "ledger file when no daemon runs (default: the global -ledger)")
			},
			run: func(e *env, v *cmdFlags, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("%w: export sales, members, refunds or events", errUsage)
				}
				if v.output != "-" {
					if err := refuseExisting(v.output, v.force); err != nil {
						return err
					}
				}
				e.c.ledgerGiven = e.c.ledgerGiven || v.name != ""
				return e.c.export(args[0], v.format, pick(v.name, e.ledgerPath), v.output, e.quiet)
			}},
		{name: "version", short: "print the version",
			run: func(e *env, _ *cmdFlags, args []string) error {
				if err := noArgs("version", args); err != nil {
					return err
				}
				if e.c.json {
					b, _ := json.Marshal(map[string]string{"version": version})
					fmt.Fprintln(e.c.out, string(b))
					return nil
				}
				fmt.Fprintln(e.c.out, "loyaltyctl", version)
				return nil
			}},
	}
}

func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, cmd, strings.Join(args, " "))
	}
	return nil
}

// refuseExisting refuses to write over an existing file unless force: a
// backup or an export named like an earlier one (`export sales -o
// b1.db`) replaced it silently (exit 2).
func refuseExisting(path string, force bool) error {
	if path == "" || force {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%w: %s exists and is left as it is; give another -o FILE, or -force to replace it", errUsage, path)
	}
	return nil
}

func pick(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// maskedErr prints its error with card numbers masked (device/cardsafe);
// errors.Is and errors.As see the error inside.
type maskedErr struct{ err error }

func (m maskedErr) Error() string { return cardsafe.MaskPANs(m.err.Error()) }
func (m maskedErr) Unwrap() error { return m.err }

// scanLine is what loyaltyctl scan prints for an answer of POST /v1/scan
// other than a refusal: "accepted (item): Stabilo pen / Total 2.50", or
// without the message when the display was cleared ("accepted (control)").
func scanLine(m map[string]any) string {
	var b strings.Builder
	if st, _ := m["status"].(string); st != "" {
		b.WriteString(st)
	} else {
		b.WriteString("answered")
	}
	if k, _ := m["kind"].(string); k != "" && m["status"] == "accepted" {
		fmt.Fprintf(&b, " (%s)", k)
	}
	if msg, _ := m["message"].(string); msg != "" {
		b.WriteString(": " + msg)
	}
	return b.String()
}
