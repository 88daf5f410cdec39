package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/loyalty-terminal/loyalty/sync/hq/contactlog"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// eraseCmd runs "members erase": GDPR article 17 (docs/hq.md "Erasing a
// member").
func eraseCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("members erase", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	contacts := fs.String("contacts", "", "the contact log (loyalty-hq contacts --log FILE): the member's contacts are deleted from it too")
	by := fs.String("by", "", "who asked for the erasure (kept with its record)")
	const use = "usage: loyalty-hq members erase (-store FILE | -config FILE) [-contacts FILE] [-by NAME] ID"
	const about = `
Removes the member's personal data at head office: the profile (name,
contact, birthday, consent and its history) is reduced to the bare id, its
cards and other aliases are forgotten, every stored profile event of the
member is redacted, and its contacts leave the contact log (-contacts).
Sales, purchases and point events stay under the bare id for the accounts;
the balance is unchanged. The erasure is recorded; 'members export ID'
then says the member was erased. serve sends a signed erase document to
every store where the member was seen; each of their registers erases the
member in its ledger and confirms. 'members erasures' (and the fleet
page) lists the registers that have not confirmed yet.
A bbolt store is compacted afterwards, so no old bytes stay in the file.`
	if help, err := parseOp(fs, args, stdout, use+"\n"+about); help || err != nil {
		return err
	}
	if fs.NArg() != 1 || strings.TrimSpace(fs.Arg(0)) == "" {
		return usageError(use)
	}
	id := fs.Arg(0)
	st, path, err := sf.openPath(false)
	if err != nil {
		return err
	}
	e, err := st.EraseMember(id, *by)
	if err != nil {
		st.Close()
		return fmt.Errorf("member %s: %w", id, err)
	}
	if err := st.Close(); err != nil {
		return err
	}
	if path != "" {
		if err := hqstore.CompactFile(path); err != nil {
			return err
		}
	}
	forgot := 0
	if *contacts != "" {
		cl, err := contactlog.Open(*contacts, nil)
		if err != nil {
			return err
		}
		forgot, err = cl.Forget(id)
		if cerr := cl.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := hqstore.CompactFile(*contacts); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "member %s erased (erasure %d): %d stored profile events redacted, %d contacts deleted\n", id, e.N, e.Redacted, forgot)
	printPending(stdout, e)
	return nil
}

func printPending(w io.Writer, e hqstore.Erasure) {
	if p := e.Pending(); len(p) > 0 {
		fmt.Fprintf(w, "  stores %s: waiting for %d register(s) to confirm: %s\n", strings.Join(e.Stores, ","), len(p), strings.Join(p, " "))
	} else {
		fmt.Fprintf(w, "  every register asked has confirmed (%d)\n", len(e.Registers))
	}
}

// erasuresCmd lists every erasure and who has not confirmed it.
func erasuresCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("members erasures", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	if help, err := parseOp(fs, args, stdout, "usage: loyalty-hq members erasures -store FILE|-config FILE"); help || err != nil {
		return err
	}
	st, err := sf.open(true)
	if err != nil {
		return err
	}
	defer st.Close()
	es, err := st.Erasures()
	if err != nil {
		return err
	}
	for _, e := range es {
		fmt.Fprintf(stdout, "erasure %d: member %s by %q at %s\n", e.N, e.Member, e.By, e.At.Format("2006-01-02 15:04:05Z"))
		printPending(stdout, e)
	}
	if len(es) == 0 {
		fmt.Fprintln(stdout, "no erasures")
	}
	return nil
}
