package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// envelope wraps every /api/v1 answer, errors included, so that clients
// parse one shape.
type envelope struct {
	Success   bool   `json:"success"`
	Data      any    `json:"data"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
}

// timestampLayout is RFC 3339 in UTC with milliseconds: precise enough to
// order answers while debugging, and still parsed by time.RFC3339.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTimestamp(t time.Time) string { return t.UTC().Format(timestampLayout) }

// encodeFailure is sent when a response cannot be encoded. It is built by
// hand because the encoder is what just failed.
const encodeFailure = `{"success":false,"data":null,"message":"internal error: response could not be encoded","timestamp":"%s"}` + "\n"

// encode renders v as JSON into a pooled buffer. The caller must hand the
// buffer back with putBuffer once the bytes are written.
func (s *server) encode(v any) (*bytes.Buffer, error) {
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	enc := json.NewEncoder(buf)
	// Names, tags and messages are not HTML; escaping <>& only makes them
	// harder to read.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.putBuffer(buf)
		return nil, err
	}
	return buf, nil
}

// putBuffer returns a buffer to the pool unless a rare huge answer grew it,
// so that one big response does not pin its memory forever.
func (s *server) putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		s.bufs.Put(buf)
	}
}

// writeEnvelope sends data in the envelope with the given status; success
// follows the status code.
func (s *server) writeEnvelope(w http.ResponseWriter, r *http.Request, code int, data any, msg string) {
	env := envelope{
		Success:   code < 400,
		Data:      data,
		Message:   msg,
		Timestamp: formatTimestamp(s.now()),
	}
	buf, err := s.encode(&env)
	if err != nil {
		s.log.Error("api: encoding response", "path", r.URL.Path, "err", err)
		body := fmt.Appendf(nil, encodeFailure, env.Timestamp)
		writeJSON(w, r, http.StatusInternalServerError, body)
		return
	}
	writeJSON(w, r, code, buf.Bytes())
	s.putBuffer(buf)
}

// writeError sends an error envelope (success=false, data=null).
func (s *server) writeError(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	s.writeEnvelope(w, r, code, nil, fmt.Sprintf(format, args...))
}

// Fixed header values, shared by every response to save three allocations
// per request. They are never modified: Header.Set replaces a value, it
// does not write into it.
var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
	hdrNoSniff = []string{"nosniff"}
)

// writeJSON writes an encoded JSON body. HEAD gets the same headers as GET
// but no body (net/http would discard it anyway; skipping it keeps
// recorders honest).
func writeJSON(w http.ResponseWriter, r *http.Request, code int, body []byte) {
	h := w.Header()
	// Keys are already canonical, so the map is written directly.
	h["Content-Type"] = hdrJSON
	// Health answers change every check: no proxy or browser may reuse one.
	h["Cache-Control"] = hdrNoStore
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// finite replaces NaN and infinities, which JSON cannot carry, by 0: a
// broken lag computation must not turn a status page into a 500.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
