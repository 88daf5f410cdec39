package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/loyalty-terminal/loyalty/cmd/loyaltyd/internal/checkout"
	"github.com/loyalty-terminal/loyalty/device/cardsafe"
	"github.com/loyalty-terminal/loyalty/device/clock"
	"github.com/loyalty-terminal/loyalty/ledger"
	"github.com/loyalty-terminal/loyalty/ledger/export"
	"github.com/loyalty-terminal/loyalty/ledger/rules"
)

// Ledger is what the API needs from the ledger; *ledger.Ledger has it.
type Ledger interface {
	RecordSale(ctx context.Context, req ledger.SaleRequest) (ledger.SaleResult, error)
	Refund(ctx context.Context, req ledger.RefundRequest) (ledger.SaleResult, error)
	Void(ctx context.Context, id, saleID, reason string) (ledger.SaleResult, error)
	Enrol(ctx context.Context, m ledger.Member) (ledger.Member, error)
	SetConsent(ctx context.Context, memberID string, c ledger.Consent) (ledger.Member, error)
	LookupAlias(alias string) (ledger.Member, error)
	Member(id string) (ledger.Member, error)
	Balance(memberID string) (ledger.Points, error)
	Sale(id string) (ledger.Sale, error)
	Backup(w io.Writer) (int64, error)
	Stats() (ledger.Stats, error)
	ForEachSale(fn func(ledger.Sale) error) error
	ForEachMember(fn func(ledger.Member) error) error
	ForEachRefund(fn func(ledger.Refund) error) error
	ForEachPointEvent(fn func(ledger.PointEvent) error) error
	Refunds(saleID string) ([]ledger.Refund, error)
	Statement(memberID string) (ledger.Statement, error)
	Reward(id string) (rules.Reward, bool)
	ConfirmClock(ctx context.Context) (ledger.ClockStatus, error)
}

var _ Ledger = (*ledger.Ledger)(nil)

// Checkout drives the register's checkout state machine; the daemon
// serialises Do with device events and applies the effects.
type Checkout interface {
	Do(ctx context.Context, ev checkout.Event) checkout.Effects
	View() checkout.View
}

// Options configures New. Nil funcs and zero values mean the defaults.
type Options struct {
	Ledger   Ledger   // required
	Checkout Checkout // optional: the /v1/checkout endpoints answer 503 without it
	// Token lets non-local callers in with "Authorization: Bearer <token>".
	// Empty: only local callers (loopback, unix socket) are served.
	Token string
	// MetricsToken lets a non-local caller read GET /metrics and nothing
	// else (a monitoring system). Empty: none.
	MetricsToken string
	// Hosts are the names the API answers to in the Host header (DNS
	// rebinding); default DefaultHosts. The unix socket is not checked.
	Hosts []string
	// MaxBody bounds request bodies; default 64 KiB.
	MaxBody int64
	// Status returns the status document (devices, ledger, sync, clock);
	// NewStatus builds it. Default: the ledger part only.
	Status func(ctx context.Context) Status
	// Healthy reports whether the daemon can take sales; default: ledger
	// Stats succeeds.
	Healthy func() error
	// Degraded lists what works badly without stopping sales (a stuck
	// display, an unplugged scanner), by name; /healthz then answers 200
	// with status "degraded" and the list. Default: nothing.
	Degraded func() map[string]string
	// Online reports whether head office is reachable (the ledger's offline
	// redemption limit applies when not); default true.
	Online func() bool
	// CheckAlias refuses an alias the register's own readers would refuse
	// as a member card (a wrong check digit under the configured card
	// rules), so no member is enrolled with a card that can never be
	// scanned; nil: no check.
	CheckAlias func(alias string) error
	// Scan injects a scan into a simulated device (loyaltyctl scan) and
	// returns what the till did with it.
	Scan func(ctx context.Context, device, code string) (ScanResult, error)
	// Restore starts a new ledger incarnation that continues head
	// office's stream for this register id (POST /v1/register/restore,
	// loyaltyctl register restore); nil: sync is off and the endpoint
	// says so.
	Restore func() (RestoreInfo, error)
	// Clock stamps consent changes; default system clock, trusted.
	Clock clock.Clock
	// Metrics receives the API's counters; default a private set.
	Metrics *metrics.Set
	Logger  *slog.Logger // default: discard
}

// Server is the API handler.
type Server struct {
	o      Options
	hosts  []string
	mux    *http.ServeMux
	routes []string
}

// New returns the API server; mount Handler on a listener.
func New(o Options) *Server {
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.Online == nil {
		o.Online = func() bool { return true }
	}
	o.Clock = clock.Or(o.Clock)
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Healthy == nil {
		o.Healthy = func() error { _, err := o.Ledger.Stats(); return err }
	}
	s := &Server{o: o, mux: http.NewServeMux()}
	for _, h := range append(append([]string(nil), DefaultHosts...), o.Hosts...) {
		s.hosts = append(s.hosts, strings.ToLower(strings.Trim(h, "[]")))
	}
	s.register()
	return s
}

// Metrics returns the metrics set the server writes to (for the daemon to
// add its own).
func (s *Server) Metrics() *metrics.Set { return s.o.Metrics }

// Handler returns the HTTP handler with the auth check; extra is mounted
// under "/" for anything the API does not serve (the kiosk page).
func (s *Server) Handler(extra http.Handler) http.Handler {
	if extra != nil {
		s.mux.Handle("/", extra)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w, code: 200}
		start := time.Now()
		if bad := s.guard(r); bad != nil && r.URL.Path != "/healthz" {
			writeErr(rw, bad.status, bad.code, bad.msg)
		} else if r.URL.Path != "/healthz" && !s.allowed(r) && !s.metricsToken(r) {
			writeErr(rw, http.StatusUnauthorized, "unauthorized", "This API only answers on the register itself; remote callers need the API token.")
		} else {
			s.mux.ServeHTTP(rw, r)
		}
		s.o.Metrics.GetOrCreateCounter(fmt.Sprintf(`loyalty_api_requests_total{code="%d"}`, rw.code)).Inc()
		s.o.Metrics.GetOrCreateHistogram(`loyalty_api_request_duration_seconds`).UpdateDuration(start)
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) { w.code = c; w.ResponseWriter.WriteHeader(c) }

// Flush passes through so server-sent events work behind the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// allowed reports whether r comes from the register itself (loopback or the
// unix socket) or carries the token.
func (s *Server) allowed(r *http.Request) bool {
	if s.o.Token != "" {
		if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
			subtle.ConstantTimeCompare([]byte(h), []byte(s.o.Token)) == 1 {
			return true
		}
	}
	if _, ok := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr); ok {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Error is the JSON error body.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	// Error texts may quote what the caller sent: never a card number.
	writeJSON(w, status, Error{Code: code, Message: cardsafe.MaskPANs(msg)})
}

// errorFor maps an error to its HTTP status, stable code and message.
// ErrorCode is the API's stable error code for err (docs/api.md, "Errors"),
// "internal" when it has none; loyaltyd's scan outcome uses the same words.
func ErrorCode(err error) string {
	_, code, _ := errorFor(err)
	return code
}

func errorFor(err error) (int, string, string) {
	type m struct {
		target error
		status int
		code   string
		msg    string
	}
	table := []m{
		{ledger.ErrRenumbered, 409, "restore_waiting", "A restore already waits for head office, and the register has recorded since; nothing was changed. It goes on when the register reaches head office; restore again after that if needed."},
		{ledger.ErrConflict, 409, "id_conflict", "This id was already used for something different; use a new id."},
		{ledger.ErrUnknownMember, 404, "unknown_member", "No member has this card or number; check it or enrol the customer."},
		{ledger.ErrUnknownSale, 404, "unknown_sale", "No sale has this id on this register; check the receipt number."},
		{ledger.ErrInsufficient, 409, "insufficient_points", "The member does not have enough points for this."},
		{ledger.ErrOfflineLimit, 409, "offline_limit", "Head office is unreachable and this redemption is above the offline limit; try again when online."},
		{ledger.ErrSaleVoided, 409, "refund_exceeds_sale", "This sale was voided: nothing is left of it to refund or void."},
		{ledger.ErrFullyRefunded, 409, "refund_exceeds_sale", "This sale is already fully refunded: nothing is left of it to refund or void."},
		{ledger.ErrRefundExceeds, 409, "refund_exceeds_sale", "This refund is more than what is left of the sale."},
		{ledger.ErrAliasTaken, 409, "alias_taken", "This card or phone number already belongs to another member."},
		{ledger.ErrNoSpace, 507, "no_space", "The register's disk is full; nothing was recorded. Call support."},
		{ledger.ErrStorage, 503, "storage_failed", "The register's storage failed; nothing was recorded, and nothing more will be until loyaltyd is restarted. Call support."},
		{ledger.ErrClosed, 503, "unavailable", "The register is shutting down; try again in a moment."},
		{ledger.ErrUnknownReward, 404, "unknown_reward", "There is no such reward in the rule set in force."},
		{ledger.ErrRewardExceedsSale, 409, "reward_exceeds_sale", "The reward is worth more than the basket; add items or choose a smaller reward."},
		{ledger.ErrClockUntrusted, 409, "clock_untrusted", "The clock is not synchronised (no NTP yet); there is nothing to confirm."},
		{ledger.ErrCardNumber, 400, "card_number", "That is a payment card number; card numbers are never stored or looked up. Use the member card or phone number."},
		{checkout.ErrCardNumber, 400, "card_number", "That is a payment card number; card numbers are never stored or looked up. Use the member card or phone number."},
		{ledger.ErrInvalid, 400, "invalid_input", "The request is not valid"},
		{checkout.ErrUnknownItem, 404, "unknown_item", "This item is not in the catalogue; key it in with its price."},
		{checkout.ErrUnknownCard, 404, "unknown_member", "No member has this card or number; check it or enrol the customer."},
		{checkout.ErrNotAffordable, 409, "insufficient_points", "The member does not have enough points for this reward."},
		{checkout.ErrUnknownReward, 404, "unknown_reward", "There is no such reward in the catalogue."},
		{checkout.ErrRewardExceedsBasket, 409, "reward_exceeds_sale", "The reward is worth more than the basket; add items or choose a smaller reward."},
		{checkout.ErrAlreadyDone, 409, "already_completed", "This sale is already recorded; start the next one."},
		{checkout.ErrEmptyBasket, 409, "empty_basket", "Nothing has been scanned yet."},
		{checkout.ErrNoMember, 409, "no_member", "Scan the member card first."},
		{checkout.ErrMemberMismatch, 409, "member_mismatch", "Another member is attached to this sale; cancel it first."},
		{checkout.ErrWrongState, 409, "wrong_state", "That cannot be done at this step of the checkout."},
		{checkout.ErrInvalidEvent, 400, "invalid_input", "The request is not valid"},
		{errNotFound, 404, "not_found", "No such thing on this register."},
		{errUnavailable, 503, "unavailable", "This function is not available on this register."},
	}
	for _, e := range table {
		if errors.Is(err, e.target) {
			msg := e.msg
			if e.status == 400 && e.code != "card_number" {
				msg = fmt.Sprintf("%s: %v.", msg, err)
			}
			return e.status, e.code, msg
		}
	}
	return 500, "internal", "The register could not do this; nothing was changed. Try again or call support."
}

// emptyBodyOK marks a request whose body may be empty.
type emptyBodyOK struct{}

var (
	errNotFound    = errors.New("api: not found")
	errUnavailable = errors.New("api: not available")
)

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	st, code, msg := errorFor(err)
	if st >= 500 {
		s.o.Logger.Error("api request failed", "path", r.URL.Path, "err", err)
	} else {
		s.o.Logger.Info("api request refused", "path", r.URL.Path, "code", code, "err", err)
	}
	writeErr(w, st, code, msg)
}

// decode reads a JSON body strictly into v, bounded by MaxBody.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, s.o.MaxBody)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErr(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("The request is larger than %d bytes; nothing was changed.", s.o.MaxBody))
			return false
		}
		writeErr(w, http.StatusBadRequest, "bad_body", "The request body could not be read; nothing was changed.")
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if emptyOK, _ := r.Context().Value(emptyBodyOK{}).(bool); emptyOK {
			return true
		}
		writeErr(w, http.StatusBadRequest, "malformed_json", "The request needs a JSON body; nothing was changed.")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "malformed_json", fmt.Sprintf("The request is not valid JSON for this call (%s); nothing was changed.", jsonProblem(err)))
		return false
	}
	if dec.More() {
		writeErr(w, http.StatusBadRequest, "malformed_json", "The request has data after the JSON object; nothing was changed.")
		return false
	}
	return true
}

// jsonProblem says what is wrong with a request body in the API's own
// terms (the JSON field path and the kind of value wanted), never in Go's
// ("Go struct field ConsentBody.given of type bool").
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		want := te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = "an integer"
		case reflect.Float32, reflect.Float64:
			want = "a number"
		case reflect.Bool:
			want = "true or false"
		case reflect.String:
			want = "a string"
		case reflect.Slice, reflect.Array:
			want = "a list"
		case reflect.Struct, reflect.Map:
			want = "an object"
		}
		if te.Field == "" {
			return fmt.Sprintf("the body must be %s, not %s", want, te.Value)
		}
		return fmt.Sprintf("%q must be %s, not %s", te.Field, want, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON at byte %d", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	return strings.TrimPrefix(msg, "json: ")
}

// Routes lists the "METHOD /path" patterns the API serves (the docs test
// checks docs/openapi.yaml against it).
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

type routeMux struct{ s *Server }

func (m routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.s.routes = append(m.s.routes, pattern)
	m.s.mux.HandleFunc(pattern, h)
}

func (s *Server) register() {
	m := routeMux{s}
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.o.Metrics.WritePrometheus(w)
	})
	m.HandleFunc("GET /v1/status", s.status)
	m.HandleFunc("POST /v1/sales", s.recordSale)
	m.HandleFunc("GET /v1/sales/{id}", s.getSale)
	m.HandleFunc("POST /v1/sales/{id}/refund", s.refund)
	m.HandleFunc("POST /v1/sales/{id}/void", s.void)
	m.HandleFunc("GET /v1/members", s.lookupMember)
	m.HandleFunc("POST /v1/members", s.enrol)
	m.HandleFunc("GET /v1/members/{id}", s.getMember)
	m.HandleFunc("GET /v1/members/{id}/statement", s.statement)
	m.HandleFunc("PUT /v1/members/{id}/consent", s.consent)
	m.HandleFunc("GET /v1/checkout", s.checkoutView)
	m.HandleFunc("POST /v1/checkout/{action}", s.checkoutAction)
	m.HandleFunc("POST /v1/scan", s.scan)
	m.HandleFunc("GET /v1/backup", s.backup)
	m.HandleFunc("GET /v1/export/{what}", s.export)
	m.HandleFunc("POST /v1/clock/confirm", s.confirmClock)
	m.HandleFunc("POST /v1/register/restore", s.restore)
	// Anything else under /v1/ (a path or a method the API does not
	// serve) answers in the API's error shape, not the mux's text or the
	// kiosk page's. Not a route: the docs test does not look for it.
	s.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "not_found", "This API has no such call (path or method); see docs/api.md.")
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if err := s.o.Healthy(); err != nil {
		writeErr(w, http.StatusServiceUnavailable, "unhealthy", "The register cannot take sales right now: "+err.Error())
		return
	}
	if s.o.Degraded != nil {
		if d := s.o.Degraded(); len(d) > 0 {
			writeJSON(w, 200, map[string]any{"status": "degraded", "degraded": d})
			return
		}
	}
	writeJSON(w, 200, map[string]string{"status": "ok"})
}

// SaleBody is the body of POST /v1/sales.
type SaleBody struct {
	ID          string          `json:"id"`
	MemberID    string          `json:"member_id,omitempty"`
	Member      string          `json:"member,omitempty"` // a card number or phone, resolved to member_id
	Lines       []ledger.Line   `json:"lines"`
	Tenders     []ledger.Tender `json:"tenders,omitempty"`
	Redemptions []RedeemBody    `json:"redemptions,omitempty"`
}

// RedeemBody redeems a catalogue reward within a sale.
type RedeemBody struct {
	RewardID string `json:"reward_id"`
}

// SaleResponse is the answer to sales, refunds and voids.
type SaleResponse struct {
	Sale     ledger.Sale         `json:"sale"`
	Refund   *ledger.Refund      `json:"refund,omitempty"`
	Events   []ledger.PointEvent `json:"events"`
	Balance  ledger.Points       `json:"balance"`
	Earned   ledger.Points       `json:"earned"`
	Redeemed ledger.Points       `json:"redeemed"`
	Replayed bool                `json:"replayed"`
}

func toResponse(r ledger.SaleResult) SaleResponse {
	ev := r.Events
	if ev == nil {
		ev = []ledger.PointEvent{}
	}
	return SaleResponse{Sale: r.Sale, Refund: r.Refund, Events: ev, Balance: r.Balance, Earned: r.Earned, Redeemed: r.Redeemed, Replayed: r.Replayed}
}

func (s *Server) recordSale(w http.ResponseWriter, r *http.Request) {
	var b SaleBody
	if !s.decode(w, r, &b) {
		return
	}
	if strings.TrimSpace(b.ID) == "" {
		writeErr(w, 400, "missing_id", "Every sale needs an id (the idempotency key, e.g. the POS receipt number).")
		return
	}
	if b.Member != "" {
		m, err := s.resolveMember(b.Member)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if b.MemberID != "" && b.MemberID != m.ID {
			writeErr(w, 400, "member_mismatch", "member and member_id name different members.")
			return
		}
		b.MemberID = m.ID
	}
	if len(b.Tenders) == 0 {
		// Default: the rest is paid in cash. Rewards come from the rule set
		// in force. Nothing left to pay (a reward worth the whole basket)
		// means no tender; a reward worth more, or one that does not exist,
		// is for the ledger to refuse with its own reason.
		var total ledger.Money
		for _, l := range b.Lines {
			total += l.Amount()
		}
		for _, rd := range b.Redemptions {
			if rw, ok := s.o.Ledger.Reward(rd.RewardID); ok {
				total -= ledger.Money(rw.Discount)
			}
		}
		if total > 0 {
			b.Tenders = []ledger.Tender{{Kind: "cash", Amount: total}}
		}
	}
	req := ledger.SaleRequest{ID: b.ID, MemberID: b.MemberID, Lines: b.Lines, Tenders: b.Tenders, HQReachable: s.o.Online()}
	for _, rd := range b.Redemptions {
		req.Redemptions = append(req.Redemptions, ledger.RedeemRequest{RewardID: rd.RewardID})
	}
	res, err := s.o.Ledger.RecordSale(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code := http.StatusCreated
	if res.Replayed {
		code = http.StatusOK
	} else {
		s.o.Metrics.GetOrCreateCounter(`loyalty_sales_total{source="api"}`).Inc()
	}
	writeJSON(w, code, toResponse(res))
}

// SaleWithRefunds is GET /v1/sales/{id}: the sale and every refund and
// void of it, in the order they were recorded.
type SaleWithRefunds struct {
	ledger.Sale
	Refunds []ledger.Refund `json:"refunds"`
}

func (s *Server) getSale(w http.ResponseWriter, r *http.Request) {
	sale, err := s.o.Ledger.Sale(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rfs, err := s.o.Ledger.Refunds(sale.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rfs == nil {
		rfs = []ledger.Refund{}
	}
	writeJSON(w, 200, SaleWithRefunds{Sale: sale, Refunds: rfs})
}

// statement answers GET /v1/members/{id}/statement; {id} is the member id
// or any alias (card, phone).
func (s *Server) statement(w http.ResponseWriter, r *http.Request) {
	m, err := s.resolveMember(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.o.Ledger.Statement(m.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, 200, st)
}

// RefundBody is the body of POST /v1/sales/{id}/refund.
type RefundBody struct {
	ID    string `json:"id"` // idempotency key of the refund
	Lines []struct {
		No       int   `json:"no"`
		Quantity int64 `json:"quantity"`
	} `json:"lines,omitempty"` // empty: the whole sale
}

func (s *Server) refund(w http.ResponseWriter, r *http.Request) {
	var b RefundBody
	if !s.decode(w, r, &b) {
		return
	}
	if strings.TrimSpace(b.ID) == "" {
		writeErr(w, 400, "missing_id", "Every refund needs an id (its idempotency key).")
		return
	}
	req := ledger.RefundRequest{ID: b.ID, SaleID: r.PathValue("id")}
	for _, l := range b.Lines {
		req.Lines = append(req.Lines, ledger.RefundLine{No: l.No, Quantity: l.Quantity})
	}
	res, err := s.o.Ledger.Refund(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, replayCode(res), toResponse(res))
}

func replayCode(r ledger.SaleResult) int {
	if r.Replayed {
		return http.StatusOK
	}
	return http.StatusCreated
}

// VoidBody is the body of POST /v1/sales/{id}/void.
type VoidBody struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

func (s *Server) void(w http.ResponseWriter, r *http.Request) {
	var b VoidBody
	if !s.decode(w, r, &b) {
		return
	}
	if strings.TrimSpace(b.ID) == "" || strings.TrimSpace(b.Reason) == "" {
		writeErr(w, 400, "missing_id", "A void needs an id (its idempotency key) and a reason.")
		return
	}
	res, err := s.o.Ledger.Void(r.Context(), b.ID, r.PathValue("id"), b.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, replayCode(res), toResponse(res))
}

// MemberResponse is a member with their balance.
type MemberResponse struct {
	Member  ledger.Member `json:"member"`
	Balance ledger.Points `json:"balance"`
}

func (s *Server) memberResp(w http.ResponseWriter, r *http.Request, m ledger.Member, status int) {
	bal, err := s.o.Ledger.Balance(m.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, status, MemberResponse{Member: m, Balance: bal})
}

func (s *Server) lookupMember(w http.ResponseWriter, r *http.Request) {
	alias := r.URL.Query().Get("alias")
	if alias == "" {
		writeErr(w, 400, "missing_alias", "Give the card number or phone as ?alias=.")
		return
	}
	m, err := s.resolveMember(alias)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.memberResp(w, r, m, 200)
}

// resolveMember finds the member a path names: the member id, or any
// alias (card number, phone in any spelling the ledger understands).
func (s *Server) resolveMember(idOrAlias string) (ledger.Member, error) {
	m, err := s.o.Ledger.Member(idOrAlias)
	if errors.Is(err, ledger.ErrUnknownMember) {
		return s.o.Ledger.LookupAlias(idOrAlias)
	}
	return m, err
}

func (s *Server) getMember(w http.ResponseWriter, r *http.Request) {
	m, err := s.resolveMember(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.memberResp(w, r, m, 200)
}

func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	var m ledger.Member
	if !s.decode(w, r, &m) {
		return
	}
	if strings.TrimSpace(m.ID) == "" {
		writeErr(w, 400, "missing_id", "A new member needs an id (e.g. the card number printed on the card).")
		return
	}
	// The member's tier, enrolment time and home register are the
	// register's to set: a caller naming a tier would enrol a member
	// straight into its benefits, a back-dated enrolment would move its
	// anniversary and points windows.
	if m.Tier != "" || !m.EnrolledAt.IsZero() || m.EnrolledTrusted || m.HomeRegister != "" {
		writeErr(w, 400, "invalid_input", "tier, enrolled_at, enrolled_clock_trusted and home_register are set by the register, not by the caller; nothing was changed.")
		return
	}
	// Consent given at enrolment is recorded as PUT .../consent records it:
	// the register's time and clock trust, never the caller's, and a
	// documented channel ("api" when none is named); the ledger starts the
	// history with it. It was stored at 0001-01-01, with no channel and no
	// history, when the body named no channel.
	m.ConsentHistory = nil
	if m.Consent.Given || m.Consent.Channel != "" || m.Consent.Note != "" {
		ch, ok := consentChannel(m.Consent.Channel)
		if !ok {
			writeErr(w, 400, "invalid_input", fmt.Sprintf("consent.channel %q: one of %s; nothing was changed.", m.Consent.Channel, strings.Join(ConsentChannels, ", ")))
			return
		}
		now, trusted := s.o.Clock.Now()
		m.Consent = ledger.Consent{Given: m.Consent.Given, Channel: ch, At: now, ClockTrusted: trusted, Note: m.Consent.Note}
	} else {
		m.Consent = ledger.Consent{}
	}
	if s.o.CheckAlias != nil {
		for _, a := range m.Aliases {
			if err := s.o.CheckAlias(a); err != nil {
				writeErr(w, 400, "invalid_card", fmt.Sprintf("Alias %q: %v; nothing was changed.", a, err))
				return
			}
		}
	}
	out, err := s.o.Ledger.Enrol(r.Context(), m)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.memberResp(w, r, out, http.StatusCreated)
}

// ConsentBody is the body of PUT /v1/members/{id}/consent. Given is
// required: a body without it ({}) recorded a withdrawal.
type ConsentBody struct {
	Given   *bool  `json:"given"`
	Channel string `json:"channel"`
	Note    string `json:"note,omitempty"`
}

// ConsentChannels are the ways a consent change may be recorded through
// the API (docs/api.md); another channel is refused.
var ConsentChannels = []string{"in-store", "api", "web", "paper"}

// consentChannel is the channel to record for c ("api" for none), and
// whether it is one of ConsentChannels.
func consentChannel(c string) (string, bool) {
	if c == "" {
		return "api", true
	}
	return c, slices.Contains(ConsentChannels, c)
}

func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	var b ConsentBody
	if !s.decode(w, r, &b) {
		return
	}
	if b.Given == nil {
		writeErr(w, 400, "invalid_input", `Say "given": true (consent given) or false (withdrawn); nothing was changed.`)
		return
	}
	ch, ok := consentChannel(b.Channel)
	if !ok {
		writeErr(w, 400, "invalid_input", fmt.Sprintf("channel %q: one of %s; nothing was changed.", b.Channel, strings.Join(ConsentChannels, ", ")))
		return
	}
	mem, err := s.resolveMember(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now, trusted := s.o.Clock.Now()
	m, err := s.o.Ledger.SetConsent(r.Context(), mem.ID, ledger.Consent{Given: *b.Given, Channel: ch, At: now, ClockTrusted: trusted, Note: b.Note})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.memberResp(w, r, m, 200)
}

func (s *Server) checkoutView(w http.ResponseWriter, r *http.Request) {
	if s.o.Checkout == nil {
		s.fail(w, r, errUnavailable)
		return
	}
	writeJSON(w, 200, s.o.Checkout.View())
}

// CheckoutBody is the body of POST /v1/checkout/{action}.
type CheckoutBody struct {
	SKU      string       `json:"sku,omitempty"`      // item
	Quantity int64        `json:"quantity,omitempty"` // item
	Price    ledger.Money `json:"price,omitempty"`    // item: keys in an unknown item
	Name     string       `json:"name,omitempty"`     // item
	Alias    string       `json:"alias,omitempty"`    // member: card or phone
	RewardID string       `json:"reward_id,omitempty"`
}

// CheckoutResponse is the checkout view after an action, plus the sale when
// the action recorded one.
type CheckoutResponse struct {
	View checkout.View `json:"view"`
	Sale *SaleResponse `json:"sale,omitempty"`
}

func (s *Server) checkoutAction(w http.ResponseWriter, r *http.Request) {
	if s.o.Checkout == nil {
		s.fail(w, r, errUnavailable)
		return
	}
	var b CheckoutBody
	// complete, cancel and redeem need no body.
	if !s.decode(w, r.WithContext(context.WithValue(r.Context(), emptyBodyOK{}, true)), &b) {
		return
	}
	var ev checkout.Event
	switch r.PathValue("action") {
	case "item":
		ev = checkout.Event{Kind: checkout.EvItem, Code: b.SKU, Quantity: b.Quantity}
		if b.Price != 0 {
			ev = checkout.Event{Kind: checkout.EvManualItem, Code: b.SKU, Quantity: b.Quantity, Price: b.Price, Name: b.Name}
		}
	case "member":
		ev = checkout.Event{Kind: checkout.EvPhone, Code: b.Alias}
	case "reward":
		ev = checkout.Event{Kind: checkout.EvPickReward, Code: b.RewardID}
	case "complete", "cancel", "redeem":
		ev = checkout.Event{Kind: checkout.EvControl, Action: r.PathValue("action")}
	default:
		s.fail(w, r, errNotFound)
		return
	}
	ev.Source = "api"
	fx := s.o.Checkout.Do(r.Context(), ev)
	if fx.Err != nil {
		s.fail(w, r, fx.Err)
		return
	}
	resp := CheckoutResponse{View: fx.View}
	if fx.Sale != nil {
		sr := toResponse(*fx.Sale)
		resp.Sale = &sr
	}
	writeJSON(w, 200, resp)
}

// ScanBody is the body of POST /v1/scan.
type ScanBody struct {
	Device string `json:"device,omitempty"` // default: the first simulated scanner
	Code   string `json:"code"`
}

func (s *Server) scan(w http.ResponseWriter, r *http.Request) {
	var b ScanBody
	if !s.decode(w, r, &b) {
		return
	}
	if s.o.Scan == nil {
		writeErr(w, 503, "no_simulated_device", "This register has no simulated scanner; scan with a real one.")
		return
	}
	if b.Code == "" || len(b.Code) > 128 || strings.ContainsAny(b.Code, "\r\n") {
		writeErr(w, 400, "invalid_input", "Give one code of 1 to 128 characters without line breaks.")
		return
	}
	res, err := s.o.Scan(r.Context(), b.Device, b.Code)
	if err != nil {
		writeErr(w, 404, "no_simulated_device", "No simulated scanner by that name: "+err.Error())
		return
	}
	switch res.Status {
	case ScanAccepted:
		writeJSON(w, 200, res)
	case ScanSent:
		writeJSON(w, 202, res)
	default:
		msg := "The till refused the scan"
		if res.Message != "" {
			msg += ": " + res.Message
		}
		// the error shape (code, message) plus what was read and why
		writeJSON(w, 422, map[string]string{"code": "scan_refused", "message": msg + ".", "status": res.Status, "kind": res.Kind, "reason": res.Reason})
	}
}

// ScanResult is what the till did with a scan sent through POST /v1/scan.
type ScanResult struct {
	// Status: accepted, refused, ignored (the device layer read something
	// the checkout does not take), or sent (no answer within a few
	// seconds).
	Status string `json:"status"`
	// Kind is what the device layer read it as (item, member, control,
	// reject).
	Kind string `json:"kind,omitempty"`
	// Reason is a stable word for a refusal (noise, bad_check_digit,
	// unknown_item, wrong_state, ...).
	Reason string `json:"reason,omitempty"`
	// Message is what the customer display showed (never the scanned
	// code itself).
	Message string `json:"message,omitempty"`
}

// The statuses of a ScanResult.
const (
	ScanAccepted = "accepted"
	ScanRefused  = "refused"
	ScanIgnored  = "ignored"
	ScanSent     = "sent"
)

// sizedResponse is the backup's answer: it sets X-Ledger-Size to the
// size of the copy about to be written (ledger.BackupSizer). The file's
// own size would count the space reserved after the data, which the copy
// does not contain: a progress bar stopped at about 40%.
type sizedResponse struct{ *heldResponse }

func (s sizedResponse) BackupSize(n int64) {
	s.w.Header().Set("X-Ledger-Size", strconv.FormatInt(n, 10))
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="ledger-backup.db"`)
	// Nothing held back: the copy streams from its first byte, and one
	// that fails before it is an error answer (streamFailed).
	h := &heldResponse{w: w}
	if _, err := s.o.Ledger.Backup(sizedResponse{h}); err != nil {
		// Once bytes went out, status and headers are gone: the
		// response is aborted (the client sees a broken transfer, and
		// loyaltyctl backup also compares what it got with
		// X-Ledger-Size).
		s.streamFailed(w, r, h.streaming, fmt.Errorf("backup: %w", err))
	}
}

// heldResponse holds the first bytes of a streamed answer (an export)
// back, so that an export failing at its start (a full disk: every
// export first takes the pending sales into the file) is an error answer,
// not a 200 with a CSV header and no rows. Past limit it streams;
// streaming says whether anything was sent.
type heldResponse struct {
	w         http.ResponseWriter
	buf       []byte
	limit     int
	streaming bool
}

func (h *heldResponse) Write(p []byte) (int, error) {
	if h.streaming {
		return h.w.Write(p)
	}
	h.buf = append(h.buf, p...)
	if len(h.buf) > h.limit {
		if err := h.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush sends what is held and streams from then on.
func (h *heldResponse) flush() error {
	h.streaming = true
	b := h.buf
	h.buf = nil
	_, err := h.w.Write(b)
	return err
}

// streamFailed ends an answer whose streaming failed: with an error
// answer when nothing was sent yet, else by aborting the response, so
// the client sees a broken transfer, never a short body that ends
// cleanly.
func (s *Server) streamFailed(w http.ResponseWriter, r *http.Request, sent bool, err error) {
	if sent {
		s.o.Logger.Error("api answer broke off", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
	w.Header().Del("Content-Type")
	w.Header().Del("Content-Disposition")
	w.Header().Del("X-Ledger-Size")
	if errors.Is(err, ledger.ErrNoSpace) {
		s.o.Logger.Error("api request failed", "path", r.URL.Path, "err", err)
		writeErr(w, 507, "no_space", "The register's disk is full: the last sales could not be taken into the ledger file first. Free space and try again; nothing was lost.")
		return
	}
	s.fail(w, r, err)
}

func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	format, err := export.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		writeErr(w, 400, "invalid_format", "format must be json or csv.")
		return
	}
	l := s.o.Ledger
	var run func(io.Writer) error
	switch r.PathValue("what") {
	case "sales":
		run = func(w io.Writer) error { return export.Sales(w, l, format) }
	case "members":
		run = func(w io.Writer) error { return export.Members(w, l, format) }
	case "refunds":
		run = func(w io.Writer) error { return export.Refunds(w, l, format) }
	case "events":
		run = func(w io.Writer) error { return export.PointEvents(w, l, format) }
	default:
		s.fail(w, r, errNotFound)
		return
	}
	w.Header().Set("Content-Type", format.ContentType())
	h := &heldResponse{w: w, limit: 64 << 10}
	if err := run(h); err != nil {
		s.streamFailed(w, r, h.streaming, err)
		return
	}
	if err := h.flush(); err != nil {
		s.o.Logger.Warn("export not delivered", "err", err)
	}
}

// confirmClock is a person confirming that the synchronised clock is
// right although it disagrees with the trusted time the register saw
// before (a clock fault): expiry and the other time-based decisions run
// again. The answer is the clock part of the status.
func (s *Server) confirmClock(w http.ResponseWriter, r *http.Request) {
	cs, err := s.o.Ledger.ConfirmClock(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.o.Logger.Warn("clock confirmed by a person", "wall", cs.Wall, "high_water", cs.HighWater)
	writeJSON(w, http.StatusOK, cs)
}

// RestoreInfo is what POST /v1/register/restore answers: the incarnation
// the ledger's events go under from its number FromLocal on, and, once
// head office's watermark numbered it, the first number on the wire and
// the incarnation it continues (Waiting until then).
type RestoreInfo struct {
	Incarnation string `json:"incarnation"`
	FromLocal   uint64 `json:"from_local"`
	Waiting     bool   `json:"waiting"`
	First       uint64 `json:"first,omitempty"`
	Continues   string `json:"continues,omitempty"`
}

func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	if s.o.Restore == nil {
		writeErr(w, http.StatusConflict, "sync_disabled", "Sync with head office is off (sync.enabled): there is no stream to restore; nothing was changed.")
		return
	}
	info, err := s.o.Restore()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.o.Logger.Warn("register restore requested", "incarnation", info.Incarnation, "from_local", info.FromLocal, "waiting", info.Waiting)
	writeJSON(w, http.StatusOK, info)
}
