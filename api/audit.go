package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// auditRecord is one line of the audit log. It names the credential a
// request presented ("admin", "read" or "none": missing or wrong), never
// the token itself.
type auditRecord struct {
	Time       string  `json:"time"`
	Who        string  `json:"who"`
	Client     string  `json:"client"`
	Peer       string  `json:"peer,omitempty"`
	Method     string  `json:"method"`
	Path       string  `json:"path"`
	Route      string  `json:"route"`
	Status     int     `json:"status"`
	DurationMs float64 `json:"duration_ms"`
}

// auditor writes audit records to a logger and, when set, a file of JSON
// lines.
type auditor struct {
	log *slog.Logger // never nil
	// errLog receives write failures, once per run of failures.
	errLog *slog.Logger

	mu      sync.Mutex
	w       io.Writer // nil: log only
	failing bool
}

func (a *auditor) record(r *http.Request, rec *auditRecord) {
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "api audit",
		slog.String("who", rec.Who),
		slog.String("client", rec.Client),
		slog.String("method", rec.Method),
		slog.String("path", rec.Path),
		slog.Int("status", rec.Status),
		slog.Float64("duration_ms", rec.DurationMs),
	)
	if a.w == nil {
		return
	}
	line, err := json.Marshal(rec)
	if err != nil {
		a.errLog.Error("api: encoding an audit record", "err", err)
		return
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	// One Write per record, so that records never interleave.
	_, err = a.w.Write(line)
	switch {
	case err != nil && !a.failing:
		a.failing = true
		a.errLog.Error("api: writing the audit log failed; records go to the log only until it works again", "err", err)
	case err == nil && a.failing:
		a.failing = false
		a.errLog.Info("api: writing the audit log works again")
	}
}

// audit records a finished mutating request.
func (s *server) audit(r *http.Request, rw *recorder, route string, d time.Duration) {
	if !rw.clientSet {
		rw.client = s.clientAddr(r)
	}
	rec := auditRecord{
		Time:       formatTimestamp(s.now()),
		Who:        s.identify(r).String(),
		Client:     "unknown",
		Method:     r.Method,
		Path:       r.URL.Path,
		Route:      route,
		Status:     rw.status,
		DurationMs: float64(d.Microseconds()) / 1000,
	}
	if rw.client.IsValid() {
		rec.Client = rw.client.String()
	}
	if peer := peerAddr(r); peer.IsValid() && peer != rw.client {
		rec.Peer = peer.String()
	}
	s.auditor.record(r, &rec)
}
