package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// weirdTargets are inputs a scanner, a typo or a hostile client sends.
var weirdTargets = []string{
	"/api/v1/cluster/nodes/%2F",
	"/api/v1/cluster/nodes/%00",
	"/api/v1/cluster/nodes/" + string(make([]byte, 300)),
	"/api/v1/cluster/nodes/９",
	"/api/v1/cluster/nodes/-0",
	"/api/v1/cluster/nodes/+1",
	"/api/v1//health",
	"/api/v1/../primary",
	"/replica?lag=%",
	"/replica?lag=1%00MB",
	"/replica?lag=" + string(make([]byte, 5000)),
	"/replica?;;;&&&==",
	"/replica?tag_=&tag_=&lag=1",
	"/read-only?lag=18446744073709551615",
	"/readiness?lag=1TB&lag=x",
	"/health?tag_%ff=%fe",
	"/?lag=x&tag_a=b",
	"/primary/",
	"//",
	"/%",
}

func TestWeirdInputNever5xx(t *testing.T) {
	for _, sc := range []scenario{scPrimary, scReplica, scDown, scLagUnknown} {
		a := sc.api(t)
		for _, target := range weirdTargets {
			for _, m := range []string{"GET", "HEAD", "OPTIONS", "POST", "TRACE", "X"} {
				rec := serveRaw(a.h, m, target)
				if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
					t.Errorf("%s: %s %q = %d", sc.name, m, target, rec.Code)
				}
			}
		}
	}
}

// serveRaw builds the request by hand: httptest.NewRequest refuses some of
// the targets that real clients nevertheless send.
func serveRaw(h http.Handler, method, target string) *httptest.ResponseRecorder {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		u = &url.URL{Path: target}
	}
	req := &http.Request{Method: method, URL: u, RequestURI: target, Header: http.Header{}, Host: "ramd", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzHandler: no path, query or method makes the API answer 500 (503 is
// a legitimate health verdict).
func FuzzHandler(f *testing.F) {
	for _, t := range weirdTargets {
		f.Add("GET", t)
	}
	for _, t := range apiRoutes {
		f.Add("GET", t)
	}
	for _, t := range checkPaths {
		f.Add("OPTIONS", t+"?lag=10MB&tag_a=b&replication_state=streaming")
	}
	apis := []*testAPI{scReplica.api(f), scLagUnknown.api(f)}
	f.Fuzz(func(t *testing.T, method, target string) {
		if method == "" || len(target) == 0 || target[0] != '/' {
			return
		}
		for _, a := range apis {
			rec := serveRaw(a.h, method, target)
			if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("%s %q = %d: %s", method, target, rec.Code, rec.Body)
			}
		}
	})
}
