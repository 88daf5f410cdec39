package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// reviewCmd lists what head office holds for review: events its policy
// refused (applied to the register's stream, not to balances or members)
// and events it could not place (another ledger, another store, a reused
// sequence number).
func reviewCmd(args []string, stdout io.Writer) error {
	if len(args) > 0 && (args[0] == "approve" || args[0] == "dismiss") {
		return reviewDecide(args[0], args[1:], stdout)
	}
	fs := flag.NewFlagSet("review", flag.ContinueOnError)
	fs.SetOutput(stdout)
	path := fs.String("store", "", "head office's store file (serve must be stopped; while it runs, GET /review on the status page)")
	asJSON := fs.Bool("json", false, "print JSON (one array) instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: loyalty-hq review [-json] -store FILE\n       loyalty-hq review approve|dismiss -store FILE REGISTER SEQ")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *path == "" || fs.NArg() != 0 {
		return errors.New("usage: loyalty-hq review [-json] -store FILE")
	}
	st, err := hqstore.Open(*path, &hqstore.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("%w (stop loyalty-hq serve first, or read GET /review on its status page)", err)
	}
	defer st.Close()
	rv, err := st.Review()
	if err != nil {
		return err
	}
	if *asJSON {
		if rv == nil {
			rv = []hqstore.Held{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rv)
	}
	if len(rv) == 0 {
		_, err := fmt.Fprintln(stdout, "nothing held for review")
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tREGISTER\tSEQ\tTYPE\tREASON\tWHY")
	for _, h := range rv {
		reason, why := h.Reason, h.Text
		if h.Code != "" {
			reason += ":" + h.Code
		}
		if why == "" {
			why = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", h.Store, h.Register, h.Seq, h.Type, reason, why)
	}
	return tw.Flush()
}

// reviewDecide ends the review of one event head office's policy held:
// approve applies it, dismiss leaves it unapplied for good.
func reviewDecide(verb string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("review "+verb, flag.ContinueOnError)
	fs.SetOutput(stdout)
	path := fs.String("store", "", "head office's store file (serve must be stopped)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	usage := fmt.Errorf("usage: loyalty-hq review %s -store FILE REGISTER SEQ", verb)
	if *path == "" || fs.NArg() != 2 {
		return usage
	}
	seq, err := strconv.ParseUint(fs.Arg(1), 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("SEQ %q: a sequence number from loyalty-hq review: %w", fs.Arg(1), usage)
	}
	st, err := hqstore.Open(*path, nil)
	if err != nil {
		return fmt.Errorf("%w (stop loyalty-hq serve first)", err)
	}
	members, err := st.ResolvePolicy(fs.Arg(0), seq, verb == "approve")
	if err != nil {
		st.Close()
		return err
	}
	if verb == "approve" {
		fmt.Fprintf(stdout, "%s seq %d applied; members changed: %v (their stores get the new summaries when serve starts)\n", fs.Arg(0), seq, members)
	} else {
		fmt.Fprintf(stdout, "%s seq %d dismissed: it stays unapplied\n", fs.Arg(0), seq)
	}
	return st.Close()
}
