package api

import (
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"
)

// unmatchedRoute labels requests no route matched, so that probes for random
// paths cannot create one metrics series each.
const unmatchedRoute = "unmatched"

// recorder captures what the handler sent, plus the route template the
// matched route reports through setRoute. Carrying the template on the
// writer rather than in the request context saves an allocation per
// request.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	route  string
	// client is the client address once admit or audit found it.
	client    netip.Addr
	clientSet bool
}

func (rw *recorder) WriteHeader(code int) {
	if !rw.wrote {
		rw.status = code
		rw.wrote = true
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if !rw.wrote {
		rw.status = http.StatusOK
		rw.wrote = true
	}
	return rw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func setRoute(w http.ResponseWriter, route string) {
	if rw, ok := w.(*recorder); ok {
		rw.route = route
	}
}

// instrument is the outermost middleware: it recovers panics, applies the
// limits (admit), records the request in metrics under its route template,
// logs it at debug level and audits mutating requests. It wraps the whole
// router (not mux.Use) so that 404s, blocked and rate-limited requests are
// counted and audited too.
func (s *server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			p := recover()
			abort := p == http.ErrAbortHandler
			if p != nil && !abort {
				s.log.Error("api: panic serving request",
					"method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if !rw.wrote {
					s.writeError(rw, r, http.StatusInternalServerError, "internal error")
				} else {
					// Headers are out: the only honest signal left is a
					// cut connection, not a truncated body that looks
					// complete.
					rw.status = http.StatusInternalServerError
					abort = true
				}
			}
			s.observe(r, rw, time.Since(start))
			if abort {
				panic(http.ErrAbortHandler)
			}
		}()
		if s.admit(rw, r) {
			next.ServeHTTP(rw, r)
		}
	})
}

func (s *server) observe(r *http.Request, rw *recorder, d time.Duration) {
	route := rw.route
	if route == "" {
		route = unmatchedRoute
	}
	s.metrics.ObserveRequest(r.Method, route, rw.status, d)
	if mutating(r.Method) {
		s.audit(r, rw, route, d)
	}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "api request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", route),
			slog.Int("status", rw.status),
			slog.Duration("duration", d),
			slog.String("remote", r.RemoteAddr),
		)
	}
}
