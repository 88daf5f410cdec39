// Command loyaltyctl is the register's local command line for cashiers,
// installers and support: status, members, sales and refunds, simulated
// scans, ledger verification, backups and exports. It talks to loyaltyd's
// local API; verify, backup and export also work on the ledger file directly
// when no daemon is running (and refuse a file a running daemon holds).
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/loyalty-terminal/loyalty/cmd/internal/apiclient"
)

var version = "dev"

const usage = `usage: loyaltyctl [global flags] COMMAND [flags] [args]

commands:
  status                              register, devices, ledger, sync lag, clock trust
  member lookup ALIAS                 find a member by card number or phone
  member enrol -id ID -name NAME [-alias A]... [-phone P] [-lang L] [-consent]
  member consent ID -given|-withdraw [-channel C]
  sale -id ID [-member ALIAS] SKU:QTY:PRICE...   record a sale (idempotent by id)
  refund SALE -id ID [LINE:QTY]...    refund a sale, whole or by line
  void SALE -id ID -reason TEXT       void a sale
  scan [-device NAME] CODE            scan a code into a simulated scanner (or a card
                                      facility-number into a simulated Wiegand reader)
  ledger verify [-ledger PATH]        check a ledger file (not one a daemon holds)
  backup -o FILE [-ledger PATH]       consistent copy, online through the daemon or direct
  export sales|members [-format csv|json] [-o FILE] [-ledger PATH]
  version

global flags:
`

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	gf := flag.NewFlagSet("loyaltyctl", flag.ContinueOnError)
	gf.Usage = func() { fmt.Fprint(os.Stderr, usage); gf.PrintDefaults() }
	addr := gf.String("addr", envOr("LOYALTY_API", "http://127.0.0.1:8080"), "loyaltyd API base URL (env LOYALTY_API)")
	socket := gf.String("socket", os.Getenv("LOYALTY_SOCKET"), "loyaltyd unix socket instead of -addr (env LOYALTY_SOCKET)")
	token := gf.String("token", os.Getenv("LOYALTY_TOKEN"), "API token for a remote daemon (env LOYALTY_TOKEN)")
	jsonOut := gf.Bool("json", false, "print JSON for scripts")
	quiet := gf.Bool("quiet", false, "no progress bars")
	ledgerPath := gf.String("ledger", envOr("LOYALTY_LEDGER", "/var/lib/loyalty/ledger.db"), "ledger file for direct access (env LOYALTY_LEDGER)")
	if err := gf.Parse(args); err != nil {
		return 2
	}
	rest := gf.Args()
	if len(rest) == 0 {
		gf.Usage()
		return 2
	}
	c := newClient(*addr, *socket, *token, *jsonOut)
	err := dispatch(c, rest[0], rest[1:], *ledgerPath, *quiet)
	if err != nil {
		var ae *apiclient.Error
		switch {
		case errors.As(err, &ae) && *jsonOut:
			fmt.Fprintf(os.Stdout, "{\"code\":%q,\"message\":%q}\n", ae.Code, ae.Message)
		case errors.Is(err, apiclient.ErrDaemonDown):
			fmt.Fprintf(os.Stderr, "loyaltyctl: %v\n(start it with `make run` or `systemctl start loyaltyd`, or point -addr/-socket at it)\n", err)
		default:
			fmt.Fprintf(os.Stderr, "loyaltyctl: %v\n", err)
		}
		return 1
	}
	return 0
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func dispatch(c *client, cmd string, args []string, ledgerPath string, quiet bool) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	lp := fs.String("ledger", ledgerPath, "ledger file")
	switch cmd {
	case "version":
		fmt.Println("loyaltyctl", version)
		return nil
	case "status":
		return c.status()
	case "member":
		if len(args) == 0 {
			return errors.New("member lookup|enrol|consent")
		}
		return member(c, args[0], args[1:])
	case "sale":
		id := fs.String("id", "", "sale id (idempotency key)")
		mem := fs.String("member", "", "member card or phone")
		if err := fs.Parse(args); err != nil {
			return err
		}
		lines, err := parseLines(fs.Args())
		if err != nil {
			return err
		}
		return c.call("POST", "/v1/sales", map[string]any{"id": *id, "member": *mem, "lines": lines}, c.showSale)
	case "refund", "void":
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return fmt.Errorf("usage: loyaltyctl %s SALE-ID -id ID [more]", cmd)
		}
		sale := args[0]
		id := fs.String("id", "", "idempotency key of the "+cmd)
		reason := fs.String("reason", "", "why (void)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if cmd == "void" {
			return c.call("POST", "/v1/sales/"+sale+"/void", map[string]any{"id": *id, "reason": *reason}, c.showSale)
		}
		var lines []map[string]any
		for _, a := range fs.Args() {
			var no int
			var q int64
			if _, err := fmt.Sscanf(a, "%d:%d", &no, &q); err != nil {
				return fmt.Errorf("refund line %q: want LINE:QUANTITY, e.g. 1:2", a)
			}
			lines = append(lines, map[string]any{"no": no, "quantity": q})
		}
		return c.call("POST", "/v1/sales/"+sale+"/refund", map[string]any{"id": *id, "lines": lines}, c.showSale)
	case "scan":
		dev := fs.String("device", "", "simulated scanner or Wiegand reader name (default: the first scanner)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("scan CODE (one code)")
		}
		return c.call("POST", "/v1/scan", map[string]any{"device": *dev, "code": fs.Arg(0)}, func(map[string]any) {
			fmt.Fprintf(c.out, "scanned %s\n", fs.Arg(0))
		})
	case "ledger":
		if len(args) == 0 || args[0] != "verify" {
			return errors.New("ledger verify [-ledger PATH]")
		}
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return verify(*lp, c.out, c.json)
	case "backup":
		o := fs.String("o", "", "output file")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return c.backup(*lp, *o, quiet || c.json)
	case "export":
		if len(args) == 0 {
			return errors.New("export sales|members")
		}
		format := fs.String("format", "csv", "csv or json")
		o := fs.String("o", "", "output file (default stdout)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return c.export(args[0], *format, *lp, *o, quiet)
	}
	return fmt.Errorf("unknown command %q (see loyaltyctl -h)", cmd)
}

func member(c *client, sub string, args []string) error {
	fs := flag.NewFlagSet("member "+sub, flag.ContinueOnError)
	switch sub {
	case "lookup":
		if len(args) != 1 {
			return errors.New("member lookup ALIAS")
		}
		return c.call("GET", "/v1/members?alias="+url.QueryEscape(args[0]), nil, c.showMember)
	case "enrol", "enroll":
		id := fs.String("id", "", "member id (e.g. the card number)")
		name := fs.String("name", "", "name")
		phone := fs.String("phone", "", "phone (also an alias)")
		lang := fs.String("lang", "", "language for display and kiosk (en, he, bg)")
		bday := fs.String("birthday", "", "YYYY-MM-DD or --MM-DD")
		consent := fs.Bool("consent", false, "agrees to be contacted")
		var aliases multi
		fs.Var(&aliases, "alias", "card number or other alias (repeatable)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if len(aliases) == 0 && *id != "" {
			aliases = append(aliases, *id)
		}
		if *phone != "" {
			aliases = append(aliases, *phone)
		}
		m := map[string]any{"id": *id, "name": *name, "aliases": []string(aliases), "language": *lang, "birthday": *bday,
			"contact": map[string]any{"phone": *phone}}
		if *consent {
			m["consent"] = map[string]any{"given": true, "channel": "in-store"}
		}
		return c.call("POST", "/v1/members", m, c.showMember)
	case "consent":
		if len(args) == 0 {
			return errors.New("member consent ID -given|-withdraw")
		}
		id := args[0]
		given := fs.Bool("given", false, "consent given")
		withdraw := fs.Bool("withdraw", false, "consent withdrawn")
		channel := fs.String("channel", "in-store", "how: in-store, api, web, paper")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *given == *withdraw {
			return errors.New("say -given or -withdraw")
		}
		return c.call("PUT", "/v1/members/"+url.PathEscape(id)+"/consent", map[string]any{"given": *given, "channel": *channel}, c.showMember)
	}
	return fmt.Errorf("unknown member command %q", sub)
}
