package main

import (
	"encoding/json"
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
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON (one array) instead of a table")
	const use = "usage: loyalty-hq review [-json] -store FILE|-config FILE\n       loyalty-hq review approve|dismiss -store FILE|-config FILE REGISTER SEQ"
	if help, err := parseOp(fs, args, stdout, use); help || err != nil {
		return err
	}
	if !sf.named() || fs.NArg() != 0 {
		return usageError(use)
	}
	var rv []hqstore.Held
	err := sf.withStore(true, func(st hqstore.Backend) error {
		var err error
		rv, err = st.Review()
		return err
	})
	if err != nil {
		return fmt.Errorf("%w (or read GET /review on serve's status page)", err)
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
	fmt.Fprintln(tw, "STORE\tREGISTER\tINCARNATION\tSEQ\tTYPE\tREASON\tWHY")
	for _, h := range rv {
		reason, why := h.Reason, h.Text
		if h.Code != "" {
			reason += ":" + h.Code
		}
		if why == "" {
			why = "-"
		}
		// The incarnation in full: what register adopt takes.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", h.Store, h.Register, cmp(h.Incarnation, "-"), h.Seq, h.Type, reason, why)
	}
	return tw.Flush()
}

// reviewDecide ends the review of one event head office's policy held:
// approve applies it, dismiss leaves it unapplied for good. An event of
// the register's ledger held as reused (other content under a number the
// stream has) can only be dismissed: the register's acks then go past it.
func reviewDecide(verb string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("review "+verb, flag.ContinueOnError)
	sf := addStoreFlags(fs)
	use := "usage: loyalty-hq review " + verb + " -store FILE|-config FILE REGISTER SEQ"
	if help, err := parseOp(fs, args, stdout, use); help || err != nil {
		return err
	}
	if !sf.named() || fs.NArg() != 2 {
		return usageError(use)
	}
	seq, err := strconv.ParseUint(fs.Arg(1), 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("SEQ %q: a sequence number from loyalty-hq review: %s", fs.Arg(1), use)
	}
	return sf.withStore(false, func(st hqstore.Backend) error {
		members, err := st.ResolvePolicy(fs.Arg(0), seq, verb == "approve")
		if err != nil {
			return err
		}
		if verb == "approve" {
			fmt.Fprintf(stdout, "%s seq %d applied; members changed: %v (serve sends their stores the new summaries)\n", fs.Arg(0), seq, members)
		} else {
			fmt.Fprintf(stdout, "%s seq %d dismissed: it stays unapplied\n", fs.Arg(0), seq)
		}
		return nil
	})
}
