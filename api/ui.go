package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ramd/ramd/api/ui"
)

// uiRoute is the metrics label of every request for the cluster page's
// files, so that probes for random names cannot create a series each.
const uiRoute = "/ui/"

// uiRoutes registers the cluster page (package ui). Its files hold no
// cluster data, so they are served without a token even when tokens are
// configured: the page asks for one and sends it with its API requests,
// which the usual access rules guard. /ui redirects to /ui/ so that the
// page's relative links resolve.
func (s *server) uiRoutes(r *mux.Router) {
	r.Handle("/ui", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		setRoute(w, "/ui")
		if !s.uiMethod(w, req, "/ui") {
			return
		}
		http.Redirect(w, req, "/ui/", http.StatusMovedPermanently)
	}))
	r.PathPrefix(uiRoute).Handler(http.HandlerFunc(s.handleUI))
}

// uiMethod admits GET and HEAD, the only methods the page's files serve.
func (s *server) uiMethod(w http.ResponseWriter, r *http.Request, route string) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	s.writeError(w, r, http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: GET, HEAD)", r.Method, route)
	return false
}

func (s *server) handleUI(w http.ResponseWriter, r *http.Request) {
	setRoute(w, uiRoute)
	if !s.uiMethod(w, r, uiRoute) {
		return
	}
	name := strings.TrimPrefix(r.URL.Path, uiRoute)
	a, ok := ui.Lookup(name)
	if !ok {
		s.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ContentType)
	h.Set("Content-Security-Policy", ui.ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Revalidate every time (a 304 costs nothing), so a node upgraded to
	// a new page never serves an old script from a browser cache.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.ETag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, a.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.Body)
	}
}

// etagMatch reports whether an If-None-Match list names tag (or is "*").
func etagMatch(list, tag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "W/"))
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}
