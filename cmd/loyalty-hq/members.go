package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/durable"
	"github.com/loyalty-terminal/loyalty/ledger/retention"
	"github.com/loyalty-terminal/loyalty/sync/hq/contactlog"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// memberExport is everything head office holds about one member
// (GDPR articles 15 and 20): `loyalty-hq members export`.
type memberExport struct {
	ExportedAt time.Time             `json:"exported_at"`
	Member     ledger.Member         `json:"member"` // profile: name, contact, birthday, consent and its history, aliases
	Summary    hqstore.MemberSummary `json:"summary"`
	Purchases  []ledger.Purchase     `json:"purchases"`
	// Contacts are head office's contacts with the member (the contact
	// log, when -contacts names it).
	Contacts     []retention.ContactRecord `json:"contacts,omitempty"`
	DoubleSpends []hqstore.DoubleSpend     `json:"double_spends,omitempty"`
	Conflicts    []hqstore.Conflict        `json:"conflicts,omitempty"`
	// HeldForReview are events held for review that name the member.
	HeldForReview []hqstore.Held `json:"held_for_review,omitempty"`
	// Erased is the member's erasure, when it was erased: the profile
	// above is then the bare id.
	Erased *hqstore.Erasure `json:"erased,omitempty"`
}

func membersCmd(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "erase" {
		return eraseCmd(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "erasures" {
		return erasuresCmd(args[1:], stdout)
	}
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(stdout, "usage: loyalty-hq members export|erase|erasures ... (loyalty-hq members COMMAND -h)")
		return nil
	}
	if len(args) == 0 || args[0] != "export" {
		return usageErrorf("members needs export, erase or erasures\n%s", usage)
	}
	fs := flag.NewFlagSet("members export", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	contacts := fs.String("contacts", "", "the contact log (loyalty-hq contacts --log FILE), to include the contacts made")
	out := fs.String("o", "-", "output file (created 0600), - for stdout")
	if help, err := parseOp(fs, args[1:], stdout, "usage: loyalty-hq members export -store FILE|-config FILE [-contacts FILE] [-o FILE] ID"); help || err != nil {
		return err
	}
	if !sf.named() || fs.NArg() != 1 {
		return usageError("usage: loyalty-hq members export -store FILE|-config FILE [-contacts FILE] [-o FILE] ID")
	}
	id := fs.Arg(0)
	st, err := sf.open(true)
	if err != nil {
		return err
	}
	defer st.Close()
	doc, err := exportMember(st, id)
	if err != nil {
		return err
	}
	if *contacts != "" {
		cl, err := contactlog.Open(*contacts, nil)
		if err != nil {
			return err
		}
		doc.Contacts, err = cl.Contacts(id)
		cl.Close()
		if err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o750); err != nil {
		return err
	}
	return durable.WriteBytes(*out, 0o600, b) // personal data
}

func exportMember(st hqstore.Backend, id string) (memberExport, error) {
	doc := memberExport{ExportedAt: time.Now().UTC()}
	var err error
	if doc.Member, err = st.Member(id); err != nil {
		return doc, fmt.Errorf("member %s: %w", id, err)
	}
	if doc.Summary, err = st.Summary(id); err != nil {
		return doc, err
	}
	doc.Summary.Member = ledger.Member{ID: id} // the profile is above, once
	if e, err := st.ErasureOf(id); err == nil {
		doc.Erased = &e
	} else if !errors.Is(err, hqstore.ErrNotErased) {
		return doc, err
	}
	if doc.Purchases, err = st.Purchases(id); err != nil {
		return doc, err
	}
	ds, err := st.DoubleSpends()
	if err != nil {
		return doc, err
	}
	for _, d := range ds {
		if d.MemberID == id {
			doc.DoubleSpends = append(doc.DoubleSpends, d)
		}
	}
	cs, err := st.Conflicts()
	if err != nil {
		return doc, err
	}
	for _, c := range cs {
		if c.Member == id || c.Owner == id {
			doc.Conflicts = append(doc.Conflicts, c)
		}
	}
	rv, err := st.Review()
	if err != nil {
		return doc, err
	}
	for _, h := range rv {
		var names struct {
			MemberID string `json:"member_id"`
			ID       string `json:"id"`
		}
		_ = json.Unmarshal(h.Data, &names)
		if names.MemberID == id || (h.Type == ledger.OutMember && names.ID == id) {
			doc.HeldForReview = append(doc.HeldForReview, h)
		}
	}
	return doc, nil
}
