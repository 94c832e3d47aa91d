package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-inference/tandem/go-gateway/internal/auth"
	"github.com/tandem-inference/tandem/go-gateway/internal/limits"
	"github.com/tandem-inference/tandem/go-gateway/internal/metrics"
	"github.com/tandem-inference/tandem/go-gateway/internal/requestid"
)

// Middleware, each a func(http.Handler) http.Handler with one job. routes.go
// shows which routes get which.

// withRequestID takes a valid X-Request-Id from the client or makes one,
// returns it in the response and puts it in the context for logs and the
// core. An invalid id is replaced rather than rejected: tracing must never
// be the reason a request fails.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestid.Header)
		if !requestid.Valid(id) {
			id = requestid.New()
		}
		w.Header().Set(requestid.Header, id)
		next.ServeHTTP(w, r.WithContext(requestid.NewContext(r.Context(), id)))
	})
}

// requestNotes collects what inner layers learn about a request (the error
// code, the authenticated client, the routed model) for the access log and
// metrics written by instrument. Only the request's own goroutine touches it.
type requestNotes struct {
	outcome string
	client  string
	model   string // the routed pool's label; "" when none was routed
}

type notesKey struct{}

func notesFrom(ctx context.Context) *requestNotes {
	if n, ok := ctx.Value(notesKey{}).(*requestNotes); ok {
		return n
	}
	return &requestNotes{} // not instrumented: notes go nowhere
}

func noteOutcome(ctx context.Context, code string) { notesFrom(ctx).outcome = code }

// noteModel records the pool a request was routed to, by its label (the
// configured model id, or upstream.DefaultPoolLabel): never the client's own
// text, which would let any client add metric series.
func noteModel(ctx context.Context, pool Pool) { notesFrom(ctx).model = pool.label() }

// modelLabel is the HTTP metrics' model label: the routed pool, or one of
// two fixed values when no pool was routed.
func (n *requestNotes) modelLabel() string {
	switch {
	case n.outcome == codeModelNotFound:
		return metrics.ModelUnknown
	case n.model != "":
		return n.model
	default:
		return metrics.ModelNone
	}
}

// instrument records metrics and writes one access-log line per request,
// labelled with route (a fixed name, never the raw path, to keep metric
// cardinality bounded). It also turns a panic into a 500 so one bad request
// cannot take the process down.
func instrument(route string, logLevel slog.Level, m *metrics.Metrics, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			notes := &requestNotes{}
			r = r.WithContext(context.WithValue(r.Context(), notesKey{}, notes))
			rec := &statusRecorder{ResponseWriter: w}

			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler { // net/http's way to abort a response
						panic(p)
					}
					logger.ErrorContext(r.Context(), "panic while handling request", "panic", p, "stack", string(debug.Stack()))
					if !rec.wroteHeader {
						writeError(rec, r, logger, errInternal(fmt.Errorf("panic: %v", p)))
					}
				}

				status := rec.status()
				outcome := notes.outcome
				if outcome == "" {
					outcome = "ok"
					if status >= 400 {
						outcome = "error"
					}
				}
				elapsed := time.Since(start)
				model := notes.modelLabel()
				m.HTTPRequests.WithLabelValues(route, strconv.Itoa(status), outcome, model).Inc()
				// r's context holds the server span (traceRequests runs
				// first), so a sampled request leaves its trace id here.
				metrics.ObserveWithTrace(r.Context(), m.HTTPRequestDuration.WithLabelValues(route, model), elapsed.Seconds())

				attrs := []slog.Attr{
					slog.String("method", r.Method),
					slog.String("path", truncate(r.URL.Path, maxLoggedPathBytes)),
					slog.String("route", route),
					slog.Int("status", status),
					slog.String("outcome", outcome),
					slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
					slog.Int64("bytes", rec.bytes),
					slog.String("remote", r.RemoteAddr),
				}
				if notes.client != "" {
					attrs = append(attrs, slog.String("client", notes.client))
				}
				logger.LogAttrs(r.Context(), logLevel, "http request", attrs...)
			}()

			next.ServeHTTP(rec, r)
		})
	}
}

// withTimeout bounds the whole request: every upstream call gets at most
// what is left of this budget.
func withTimeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// requireAPIKey checks "Authorization: Bearer <key>" when keys are
// configured, and names the client by its key for rate limiting and logs.
func requireAPIKey(keys *auth.KeySet, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if !keys.Enabled() {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := bearerToken(r.Header.Get("Authorization"))
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
				writeError(w, r, logger, errMissingAPIKey())
				return
			}
			id, ok := keys.Verify(token)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tandem", error="invalid_token"`)
				writeError(w, r, logger, errInvalidAPIKey())
				return
			}
			notesFrom(r.Context()).client = id
			next.ServeHTTP(w, r)
		})
	}
}

// bearerToken extracts the token of a Bearer Authorization header.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// limitByAddress applies the rate limit by client address (limits.ClientIP:
// the TCP peer, or what trusted proxies say) before authentication, so that
// a flood of wrong keys is throttled before it costs a digest each. With
// auth off, every request takes a token. With auth on, only a failed
// authentication takes one, and an address whose bucket is empty is refused
// at once: valid clients are limited by their key (limitByKey), never by a
// proxy address they may share with others.
func limitByAddress(l *limits.RateLimiter, clientIP *limits.ClientIP, keys *auth.KeySet, m *metrics.Metrics, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if !l.Enabled() {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := "ip:" + clientIP.Of(r)
			check := l.Allow
			if keys.Enabled() {
				check = l.Peek
			}
			if ok, retryAfter := check(key); !ok {
				m.LimiterRejections.WithLabelValues(metrics.LimiterRate).Inc()
				writeError(w, r, logger, errRateLimited(retryAfter))
				return
			}
			next.ServeHTTP(w, r)
			if keys.Enabled() && notesFrom(r.Context()).outcome == codeInvalidAPIKey {
				l.Allow(key) // charge the failed attempt
			}
		})
	}
}

// limitByKey applies the rate limit per API key, after authentication;
// without keys, limitByAddress has done the job.
func limitByKey(l *limits.RateLimiter, keys *auth.KeySet, m *metrics.Metrics, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if !l.Enabled() || !keys.Enabled() {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, retryAfter := l.Allow(notesFrom(r.Context()).client); !ok {
				m.LimiterRejections.WithLabelValues(metrics.LimiterRate).Inc()
				writeError(w, r, logger, errRateLimited(retryAfter))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// maxLoggedPathBytes bounds the path in access-log lines: a client can send
// a path as long as the header limit, and every rejected request logs one.
const maxLoggedPathBytes = 256

// truncate cuts s to n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "...(truncated)"
}

// limitInFlight caps concurrent API requests and rejects the excess at once.
func limitInFlight(f *limits.InFlight, m *metrics.Metrics, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			release, ok := f.TryAcquire()
			if !ok {
				m.LimiterRejections.WithLabelValues(metrics.LimiterInFlight).Inc()
				writeError(w, r, logger, errTooManyInFlight())
				return
			}
			defer release()
			m.HTTPInFlight.Inc()
			defer m.HTTPInFlight.Dec()
			next.ServeHTTP(w, r)
		})
	}
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
	bytes       int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.code, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if !s.wroteHeader {
		return http.StatusOK // net/http sends 200 for a handler that wrote nothing
	}
	return s.code
}
