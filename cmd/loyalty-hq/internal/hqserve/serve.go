package hqserve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/loyalty-terminal/loyalty/sync/hq"
	"github.com/loyalty-terminal/loyalty/sync/hq/hqstore"
	"github.com/loyalty-terminal/loyalty/sync/hq/pgstore"
)

// StatusDoc is what GET /status returns.
type StatusDoc struct {
	Service   hq.Status               `json:"service"`
	Registers []hqstore.RegisterState `json:"registers"`
}

// Serve runs head office until ctx is cancelled, then shuts down within a
// few seconds. ready, if not nil, is called once the store is open and the
// status listener (if any) is up, with its address.
func Serve(ctx context.Context, cfg Config, log *slog.Logger, ready func(statusAddr string)) error {
	conn, err := cfg.Conn()
	if err != nil {
		return err
	}
	signer, keys, err := cfg.Keys()
	if err != nil {
		return err
	}
	st, err := OpenStore(cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	pol, err := cfg.NewPolicy()
	if err != nil {
		return err
	}
	hopts := hq.Options{Conn: conn, Filters: cfg.Filters, MaxBatch: cfg.MaxBatch, MaxQueuedBytes: cfg.MaxQueuedBytes,
		SummaryInterval: cfg.SummaryInterval, SummaryMonths: cfg.summaryMonths(), Logger: log, Signer: signer, Keys: keys, Policy: pol}
	if pg, ok := st.(*pgstore.Store); ok {
		// One of several workers: its own client id, a shared
		// subscription, and the summaries sent by the elected one.
		if hopts.Conn.ClientID == "" {
			host, _ := os.Hostname()
			hopts.Conn.ClientID = fmt.Sprintf("loyalty-hq-%s-%d", host, os.Getpid())
		}
		coord := pgstore.NewCoordinator(pg, 0, 0, log)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go coord.Run(cctx)
		hopts.Group, hopts.Coordinator = cfg.Postgres.Group, coord
		log.Info("store: postgres", "addr", pg.Addr(), "group", cfg.Postgres.Group, "client_id", hopts.Conn.ClientID)
	}
	svc, err := hq.New(st, hopts)
	if err != nil {
		return err
	}
	status := func() StatusDoc {
		regs, _ := st.Registers()
		return StatusDoc{Service: svc.Status(), Registers: regs}
	}

	// The fleet page measures how long a register's watermark has not
	// moved from the store, between page views too.
	watch := newFleetWatch(time.Now())
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Stamped after the read: a watermark that moved while
				// this goroutine waited for the CPU did not move at the
				// tick, and stamping it then would overstate its silence.
				if regs, err := st.Registers(); err == nil {
					now := time.Now()
					for _, r := range regs {
						watch.moved(r.Register, r.Watermark, now)
					}
				}
			}
		}
	}()

	var srv *http.Server
	addr := ""
	if cfg.StatusAddr != "off" {
		ln, err := net.Listen("tcp", cfg.StatusAddr)
		if err != nil {
			return fmt.Errorf("status listener: %w", err)
		}
		addr = ln.Addr().String()
		mux := http.NewServeMux()
		fleetHandlers(mux, func() FleetDoc { return fleetDoc(st, svc, watch, cfg.FleetSilence, time.Now()) })
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(status())
		})
		mux.HandleFunc("GET /members/{id}", func(w http.ResponseWriter, r *http.Request) {
			sum, err := st.Summary(r.PathValue("id"))
			if errors.Is(err, hqstore.ErrUnknownMember) {
				writeError(w, http.StatusNotFound, "unknown_member", err)
				return
			} else if err != nil {
				writeError(w, http.StatusInternalServerError, "store_error", err)
				return
			}
			writeJSON(w, sum)
		})
		mux.HandleFunc("GET /configs", func(w http.ResponseWriter, _ *http.Request) {
			list, err := st.Configs()
			writeList(w, hq.Documents(list), err)
		})
		mux.HandleFunc("GET /doublespends", func(w http.ResponseWriter, _ *http.Request) {
			list, err := st.DoubleSpends()
			writeList(w, list, err)
		})
		mux.HandleFunc("GET /review", func(w http.ResponseWriter, _ *http.Request) {
			list, err := st.Review()
			writeList(w, list, err)
		})
		mux.HandleFunc("GET /gaps", func(w http.ResponseWriter, _ *http.Request) {
			list, err := st.Gaps()
			writeList(w, list, err)
		})
		mux.HandleFunc("GET /conflicts", func(w http.ResponseWriter, _ *http.Request) {
			list, err := st.Conflicts()
			writeList(w, list, err)
		})
		if snap, ok := st.(interface {
			Snapshot(io.Writer) (int64, error)
		}); ok {
			// A consistent copy of the bbolt store for report and
			// contacts while serve holds the file (loyalty-hq report
			// -config fetches it).
			mux.HandleFunc("GET /snapshot", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				if _, err := snap.Snapshot(w); err != nil {
					log.Error("snapshot", "err", err)
				}
			})
		}
		token, err := cfg.statusToken()
		if err != nil {
			ln.Close()
			return err
		}
		srv = &http.Server{Handler: statusGuard(token, mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("status server", "err", err)
			}
		}()
		log.Info("status page", "url", "http://"+addr+"/status", "fleet", "http://"+addr+"/")
	}
	if ready != nil {
		ready(addr)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	tick := time.NewTicker(cfg.StatusLogEvery)
	defer tick.Stop()
	log.Info("loyalty-hq serving", "store", cfg.Store, "broker", conn.Broker)
	for {
		select {
		case err := <-done:
			shutdownHTTP(srv)
			return err
		case <-tick.C:
			s := svc.Status()
			log.Info("status", "connected", s.Connected, "applied", s.Applied, "duplicates", s.Duplicates,
				"rejected", s.Rejected, "conflicts", s.Conflicts, "reviewed", s.Reviewed, "gap_requests", s.GapRequests, "queue", s.QueueLen)
		case <-ctx.Done():
			log.Info("shutting down")
			shutdownHTTP(srv)
			select {
			case err := <-done:
				return err
			case <-time.After(30 * time.Second):
				return errors.New("hq did not stop within 30s")
			}
		}
	}
}

func shutdownHTTP(srv *http.Server) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// OpenStore opens the configured head-office store: the bbolt file, or
// PostgreSQL when postgres.dsn_file is set. forReports opens bbolt read-
// only (for report and contacts).
func OpenStore(cfg Config, forReports bool) (hqstore.Backend, error) {
	opts := hqstore.Options{OfflineRedeemLimit: cfg.offlineLimit(), ReadOnly: forReports}
	if cfg.Postgres.DSNFile != "" {
		dsn, err := cfg.DSN()
		if err != nil {
			return nil, err
		}
		opts.ReadOnly = false
		return pgstore.Open(dsn, &pgstore.Options{Store: opts, MaxConns: int32(cfg.Postgres.MaxConns), Notify: !forReports})
	}
	if forReports {
		opts.LockTimeout = 2 * time.Second
	}
	st, err := hqstore.Open(cfg.Store, &opts)
	if err != nil {
		if errors.Is(err, hqstore.ErrLocked) {
			return nil, fmt.Errorf("%w: is another loyalty-hq running on this store?", err)
		}
		return nil, err
	}
	return st, nil
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers an error as JSON, {"code", "message"}, as every other
// answer of the status listener is JSON.
func writeError(w http.ResponseWriter, status int, code string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": err.Error()})
}

// writeList answers a list read from the store: the list as
// a JSON array, [] when it is empty (never null), or the error.
func writeList[T any](w http.ResponseWriter, list []T, err error) {
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", err)
		return
	}
	if list == nil {
		list = []T{}
	}
	writeJSON(w, list)
}
