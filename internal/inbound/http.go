package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mira/mira-operator/internal/billing"
	"github.com/mira/mira-operator/internal/integrations"
	"github.com/mira/mira-operator/internal/queue"
	"github.com/mira/mira-operator/internal/recall"
	"github.com/mira/mira-operator/internal/signing"
	"github.com/mira/mira-operator/internal/workspace"
)

// Subjects of the inbound stream.
const (
	subjectRecall   = queue.InboundSubject + ".recall"
	subjectStripe   = queue.InboundSubject + ".stripe"
	subjectRoleplay = queue.InboundSubject + ".roleplay"
)

// Message ids in the inbound stream are "<source>:<provider id>", so ids of
// different providers can never collide in the one stream's dedupe window.
func msgID(source, id string) string { return source + ":" + id }

// HeaderWebhookID carries the provider's id on stored inbound messages.
const HeaderWebhookID = "Mira-Webhook-Id"

// maxWebhookIDLength bounds the provider ids used as message ids.
const maxWebhookIDLength = 256

// unauthorizedBody is the one answer to every signature problem, so the
// response says nothing about what was wrong.
const unauthorizedBody = "invalid webhook signature"

// Routes adds the inbound routes to mux. The unscoped routes belong to the
// default workspace; /webhooks/{provider}/{namespace} and
// /v1/namespaces/{namespace}/roleplays to the namespace they name.
func (in *Inbound) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /webhooks/recall", in.postRecall)
	mux.HandleFunc("POST /webhooks/recall/{namespace}", in.postRecall)
	mux.HandleFunc("POST /webhooks/stripe", in.postStripe)
	mux.HandleFunc("POST /webhooks/stripe/{namespace}", in.postStripe)
	legacy := func(h http.HandlerFunc) http.Handler {
		return in.integrations.RequireToken(in.log, in.inDefaultWorkspace(h))
	}
	mux.Handle("POST /v1/roleplays", legacy(in.postRoleplay))
	if in.namespaceAuth != nil {
		mux.Handle("POST /v1/namespaces/{namespace}/roleplays", in.namespaceAuth(ResourceRoleplays, in.inPathWorkspace(in.postRoleplay)))
	}
	mux.Handle("GET /v1/reports/{id}", legacy(in.getReport))
	mux.Handle("POST /v1/meetings/{id}/rescore", legacy(in.postRescore))
	mux.Handle("GET /v1/billing/customers/{id}", legacy(in.getCustomer))
	mux.Handle("GET /v1/billing/users/{id}", legacy(in.getUser))
}

// ResourceRoleplays is the data.platform.mira.io resource whose "create"
// permission POST /v1/namespaces/{namespace}/roleplays needs.
const ResourceRoleplays = "roleplays"

// inDefaultWorkspace runs h in the default workspace.
func (in *Inbound) inDefaultWorkspace(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r.WithContext(workspace.With(r.Context(), in.defaultNS)))
	})
}

// inPathWorkspace runs h in the workspace the path names (404 for a name
// that cannot be a namespace).
func (in *Inbound) inPathWorkspace(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns := r.PathValue("namespace")
		if !in.served(ns) {
			unread(w)
			writeError(w, http.StatusNotFound, "no such workspace")
			return
		}
		h(w, r.WithContext(workspace.With(r.Context(), ns)))
	})
}

// served says whether this receiver serves workspace ns: a namespace name,
// and with --watch-namespace that namespace or the default workspace (the
// receiver's caches hold no other namespace's templates or endpoints).
func (in *Inbound) served(ns string) bool {
	if !workspace.Valid(ns) {
		return false
	}
	return in.watchNS == "" || ns == in.watchNS || ns == in.defaultNS
}

// requestWorkspace is the workspace of an inbound webhook: the namespace
// its path names, else the default workspace. ok is false for a path
// that cannot name a namespace.
func (in *Inbound) requestWorkspace(r *http.Request) (string, bool) {
	if ns := r.PathValue("namespace"); ns != "" {
		return ns, in.served(ns)
	}
	return in.defaultNS, true
}

// readBody reads at most limit bytes; past it, it answers 413 and returns
// false. A declared Content-Length past the limit is refused unread.
func (in *Inbound) readBody(w http.ResponseWriter, r *http.Request, limit int64, route string) ([]byte, bool) {
	if r.ContentLength > limit {
		unread(w)
		in.count(route, outcomeTooLarge)
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			in.count(route, outcomeTooLarge)
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit))
			return nil, false
		}
		in.count(route, outcomeInvalid)
		writeError(w, http.StatusBadRequest, "could not read the body")
		return nil, false
	}
	return body, true
}

// unread marks a response to a request whose body is refused unread: the
// connection closes after the answer, otherwise net/http would read up to
// 256 KiB of the body to keep the connection alive.
func unread(w http.ResponseWriter) { w.Header().Set("Connection", "close") }

func (in *Inbound) count(route, outcome string) {
	in.metrics.requests.WithLabelValues(route, outcome).Inc()
}

// store writes one verified inbound message to the inbound stream and says
// whether JetStream already had it (a duplicate within the dedupe window).
func (in *Inbound) store(ctx context.Context, subject, id, source string, body []byte) (bool, error) {
	ns := workspace.From(ctx)
	if ns == "" {
		return false, fmt.Errorf("store inbound %s message: no workspace", source)
	}
	// The workspace is the subject's last token (NATS permissions can scope
	// it) and part of the message id, so two workspaces' ids never collide.
	msg := &nats.Msg{Subject: subject + "." + ns, Data: body, Header: nats.Header{}}
	msg.Header.Set(HeaderWebhookID, id)
	ack, err := in.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID(source, ns+":"+id)))
	if err != nil {
		return false, fmt.Errorf("store inbound %s message: %w", source, err)
	}
	return ack.Duplicate, nil
}

// Reasons of mira_inbound_ignored_total.
const (
	reasonNotAnEvent     = "not_an_event"
	reasonIDTooLong      = "id_too_long"
	reasonAPIVersion     = "api_version"
	reasonInvalidPayload = "invalid_payload"
)

// ignore answers a signature-valid webhook that can never be accepted with
// 200 "ignored": a 4xx would make Stripe or Svix retry it for days. It is
// counted and logged instead of stored.
func (in *Inbound) ignore(w http.ResponseWriter, route, reason, detail string) {
	in.log.Info("signed webhook ignored: no retry could make it acceptable", "route", route, "reason", reason, "detail", detail)
	in.count(route, outcomeIgnored)
	in.metrics.ignored.WithLabelValues(route, reason).Inc()
	writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "reason": reason, "detail": detail})
}

// answerStored answers a stored (or duplicate) webhook.
func (in *Inbound) answerStored(w http.ResponseWriter, route string, code int, dup bool, err error, fields map[string]string) {
	if err != nil {
		in.log.Error(err, "inbound message not stored; the sender will retry", "route", route)
		in.count(route, outcomeStoreFailed)
		writeError(w, http.StatusServiceUnavailable, "the webhook could not be stored; retry")
		return
	}
	status := "stored"
	if dup {
		status = "duplicate"
		in.count(route, outcomeDuplicate)
	} else {
		in.count(route, outcomeStored)
	}
	out := map[string]string{"status": status}
	for k, v := range fields {
		out[k] = v
	}
	writeJSON(w, code, out)
}

// postRecall receives a Recall.ai webhook (Svix / Standard Webhooks).
func (in *Inbound) postRecall(w http.ResponseWriter, r *http.Request) {
	ns, ok := in.requestWorkspace(r)
	if !ok {
		in.noSuchWorkspace(w, routeRecall)
		return
	}
	ctx := workspace.With(r.Context(), ns)
	r = r.WithContext(ctx)
	if !in.knownWorkspace(ctx, ns) {
		in.unknownWorkspace(w, routeRecall, ns)
		return
	}
	ws := in.workspaces.Secret(ns)
	secret := ws.Value(ctx, integrations.RecallWebhookSecretKey)
	if secret == "" {
		in.notConfigured(w, routeRecall, ws, integrations.RecallWebhookSecretKey)
		return
	}
	// Unsigned or stale requests are refused before the body is read.
	h := signing.StandardFromHeaders(r.Header)
	if err := signing.CheckStandardHeaders(h, in.o.Now(), in.o.Tolerance); err != nil {
		unread(w)
		in.log.V(1).Info("Recall webhook refused", "reason", err.Error())
		in.count(routeRecall, outcomeUnauthorized)
		writeError(w, http.StatusUnauthorized, unauthorizedBody)
		return
	}
	body, ok := in.readBody(w, r, MaxWebhookBytes, routeRecall)
	if !ok {
		return
	}
	if err := signing.VerifyStandard([]string{secret}, h, body, in.o.Now(), in.o.Tolerance); err != nil {
		in.log.V(1).Info("Recall webhook refused", "reason", err.Error())
		in.count(routeRecall, outcomeUnauthorized)
		writeError(w, http.StatusUnauthorized, unauthorizedBody)
		return
	}
	if len(h.ID) > maxWebhookIDLength {
		in.ignore(w, routeRecall, reasonIDTooLong, fmt.Sprintf("webhook id longer than %d characters", maxWebhookIDLength))
		return
	}
	if err := recall.CheckEvent(body); err != nil {
		in.ignore(w, routeRecall, reasonNotAnEvent, "body is not a Recall.ai webhook: a JSON object with an event name")
		return
	}
	dup, err := in.store(r.Context(), subjectRecall, h.ID, routeRecall, body)
	in.answerStored(w, routeRecall, http.StatusOK, dup, err, nil)
}

// noSuchWorkspace answers a scoped route whose path cannot name a namespace.
func (in *Inbound) noSuchWorkspace(w http.ResponseWriter, route string) {
	unread(w)
	in.count(route, outcomeInvalid)
	writeError(w, http.StatusNotFound, "no such workspace")
}

// knownWorkspace says whether ns is a workspace at all (see
// Deps.KnownWorkspace).
func (in *Inbound) knownWorkspace(ctx context.Context, ns string) bool {
	return in.known == nil || in.known(ctx, ns)
}

// unknownWorkspace answers a webhook for a namespace that is no workspace
// like a bad signature (401): nothing is read, and nothing tells an
// outsider which namespaces exist. Logged at debug level only, since
// anyone can make these up.
func (in *Inbound) unknownWorkspace(w http.ResponseWriter, route, ns string) {
	unread(w)
	in.log.V(1).Info("webhook refused: the namespace is not a workspace (no WebhookEndpoint or ScoringTemplate)", "route", route, "namespace", ns)
	in.count(route, outcomeUnauthorized)
	writeError(w, http.StatusUnauthorized, unauthorizedBody)
}

// notConfigured answers a webhook for a workspace without the signing
// secret: 401 with the body of a bad signature, so the answer says nothing
// about which workspaces or keys exist. The log says what is missing.
func (in *Inbound) notConfigured(w http.ResponseWriter, route string, ws *integrations.Secret, key string) {
	unread(w)
	in.log.Info("webhook refused: the workspace's integrations Secret has no signing secret",
		"route", route, "secret", ws.Key.String(), "key", key)
	in.count(route, outcomeNotConfigured)
	writeError(w, http.StatusUnauthorized, unauthorizedBody)
}

// stripeVerifier returns a verifier with workspace ns's current signing
// secret, or nil when its integrations Secret has none.
func (in *Inbound) stripeVerifier(ctx context.Context, ns string) (*billing.Verifier, error) {
	secret := in.workspaces.Secret(ns).Value(ctx, integrations.StripeWebhookSecretKey)
	if secret == "" {
		return nil, nil
	}
	in.verifiersMu.Lock()
	defer in.verifiersMu.Unlock()
	if v, ok := in.verifiers[ns]; ok && v.secret == secret {
		return v.v, nil
	}
	v, err := billing.NewVerifier(billing.VerifierOptions{
		Tolerance: in.o.Tolerance, APIVersionPolicy: in.o.StripeAPIVersionPolicy, Secret: secret,
	})
	if err != nil {
		return nil, err
	}
	if len(in.verifiers) >= maxVerifiers {
		clear(in.verifiers) // bounded: rebuilt on the next request of each workspace
	}
	in.verifiers[ns] = stripeVerifier{secret: secret, v: v}
	return v, nil
}

// maxVerifiers bounds the per-workspace Stripe verifiers kept.
const maxVerifiers = 1024

// stripeVerifier is a workspace's Stripe verifier and the secret it holds.
type stripeVerifier struct {
	secret string
	v      *billing.Verifier
}

// postStripe receives a Stripe webhook.
func (in *Inbound) postStripe(w http.ResponseWriter, r *http.Request) {
	ns, ok := in.requestWorkspace(r)
	if !ok {
		in.noSuchWorkspace(w, routeStripe)
		return
	}
	ctx := workspace.With(r.Context(), ns)
	r = r.WithContext(ctx)
	if !in.knownWorkspace(ctx, ns) {
		in.unknownWorkspace(w, routeStripe, ns)
		return
	}
	v, err := in.stripeVerifier(ctx, ns)
	if err != nil {
		in.log.Error(err, "build Stripe verifier")
	}
	if v == nil {
		in.notConfigured(w, routeStripe, in.workspaces.Secret(ns), integrations.StripeWebhookSecretKey)
		return
	}
	// A request without a Stripe-Signature carrying a timestamp and a v1
	// signature is refused before the body is read.
	sig := r.Header.Get("Stripe-Signature")
	if !strings.Contains(sig, "t=") || !strings.Contains(sig, "v1=") {
		unread(w)
		in.log.V(1).Info("Stripe webhook refused", "reason", "missing signature header")
		in.count(routeStripe, outcomeUnauthorized)
		writeError(w, http.StatusUnauthorized, unauthorizedBody)
		return
	}
	body, ok := in.readBody(w, r, MaxWebhookBytes, routeStripe)
	if !ok {
		return
	}
	ev, err := v.Verify(body, sig)
	switch {
	case err == nil:
	case errors.Is(err, billing.ErrSignature):
		in.log.V(1).Info("Stripe webhook refused", "reason", "signature")
		in.count(routeStripe, outcomeUnauthorized)
		writeError(w, http.StatusUnauthorized, unauthorizedBody)
		return
	case errors.Is(err, billing.ErrAPIVersion):
		in.ignore(w, routeStripe, reasonAPIVersion, err.Error())
		return
	case errors.Is(err, billing.ErrNotConfigured):
		in.count(routeStripe, outcomeNotConfigured)
		writeError(w, http.StatusUnauthorized, unauthorizedBody)
		return
	default:
		// Correctly signed, yet not an event Mira can decode.
		in.ignore(w, routeStripe, reasonInvalidPayload, "body is not a Stripe event")
		return
	}
	if len(ev.ID) > maxWebhookIDLength {
		in.ignore(w, routeStripe, reasonIDTooLong, fmt.Sprintf("event id longer than %d characters", maxWebhookIDLength))
		return
	}
	dup, err := in.store(r.Context(), subjectStripe, ev.ID, routeStripe, body)
	in.answerStored(w, routeStripe, http.StatusOK, dup, err, map[string]string{"id": ev.ID})
}

var reportIDPattern = regexp.MustCompile(`^rpt_[0-9a-f]{24}$`)

// getReport serves a stored coaching report.
func (in *Inbound) getReport(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !reportIDPattern.MatchString(id) {
		writeError(w, http.StatusNotFound, "no such report")
		return
	}
	entry, err := in.reportsOf(r.Context()).Get(r.Context(), id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		writeError(w, http.StatusNotFound, "no such report")
		return
	}
	if err != nil {
		in.log.Error(err, "read report", "report", id)
		writeError(w, http.StatusServiceUnavailable, "the report store is unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(entry.Value()) //nolint:gosec // G705: a stored JSON document, served as application/json
}

func (in *Inbound) billingError(w http.ResponseWriter, err error, what string) {
	switch {
	case errors.Is(err, billing.ErrInvalidID):
		writeError(w, http.StatusBadRequest, "invalid id")
	case errors.Is(err, billing.ErrNotFound):
		writeError(w, http.StatusNotFound, "no billing state for this "+what)
	default:
		in.log.Error(err, "read billing state", "kind", what)
		writeError(w, http.StatusServiceUnavailable, "the billing store is unavailable")
	}
}

func (in *Inbound) getCustomer(w http.ResponseWriter, r *http.Request) {
	c, err := in.billingOf(r.Context()).Customer(r.Context(), r.PathValue("id"))
	if err != nil {
		in.billingError(w, err, "customer")
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// UserBilling is the answer of GET /v1/billing/users/{id}.
type UserBilling struct {
	User      billing.User       `json:"user"`
	Customers []billing.Customer `json:"customers"`
}

func (in *Inbound) getUser(w http.ResponseWriter, r *http.Request) {
	u, cs, err := in.billingOf(r.Context()).User(r.Context(), r.PathValue("id"))
	if err != nil {
		in.billingError(w, err, "user")
		return
	}
	writeJSON(w, http.StatusOK, UserBilling{User: u, Customers: cs})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
