package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/loyalty-terminal/loyalty/cmd/loyalty-hq/internal/hqserve"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
)

// storeFlags are the flags by which an operator command names head
// office's store: -store FILE (the bbolt file; serve must be stopped, it
// holds the file) or -config FILE (serve's config: its bbolt file as with
// -store, or its PostgreSQL database, where the command runs beside the
// workers).
type storeFlags struct {
	store, config *string
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		store:  fs.String("store", "", "head office's bbolt store file (serve must be stopped)"),
		config: fs.String("config", "", "serve's config file: its store file, or its PostgreSQL database (serve may run)"),
	}
}

// named reports whether one of the two was given.
func (f storeFlags) named() bool { return *f.store != "" || *f.config != "" }

// open opens the store the flags name; readOnly for commands that only
// read (a bbolt file then opens beside another reader).
func (f storeFlags) open(readOnly bool) (hqstore.Backend, error) {
	st, _, err := f.openPath(readOnly)
	return st, err
}

// openPath is open that also returns the bbolt file's path ("" on
// PostgreSQL), for commands that compact it afterwards.
func (f storeFlags) openPath(readOnly bool) (hqstore.Backend, string, error) {
	path := *f.store
	switch {
	case path != "" && *f.config != "":
		return nil, "", usageError("give -store or -config, not both")
	case *f.config != "":
		cfg, err := hqserve.Load(*f.config)
		if err != nil {
			return nil, "", err
		}
		if cfg.Postgres.DSNFile != "" {
			st, err := hqserve.OpenStore(cfg, true)
			return st, "", err
		}
		path = cfg.Store
	case path == "":
		return nil, "", errors.New("name head office's store: -store FILE or -config FILE")
	}
	st, err := hqstore.Open(path, &hqstore.Options{ReadOnly: readOnly})
	if err != nil {
		return nil, "", fmt.Errorf("%w (stop loyalty-hq serve first)", err)
	}
	return st, path, nil
}

// withStore opens the store the flags name for one operator command, runs
// fn and closes it.
func (f storeFlags) withStore(readOnly bool, fn func(hqstore.Backend) error) error {
	st, err := f.open(readOnly)
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		st.Close()
		return err
	}
	return st.Close()
}

// parseOp parses a command's flags; help is true when -h was asked: the
// usage and the flags are printed on out, and there is nothing to do. A
// flag it cannot parse is an error that ends with the usage (main prints
// it on stderr); nothing goes to out then.
func parseOp(fs *flag.FlagSet, args []string, out io.Writer, usage string) (help bool, err error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(out, usage)
			fs.SetOutput(out)
			fs.PrintDefaults()
			return true, nil
		}
		return false, usageErrorf("%v\n%s", err, usage)
	}
	return false, nil
}
