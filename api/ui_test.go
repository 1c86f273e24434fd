package api

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ramd/ramd/api/ui"
)

func tokensSet() apiOption {
	return func(c *Config, _ *fakeSource) {
		c.Auth = AuthConfig{AdminToken: testAdminToken, ReadToken: testReadToken, PublicHealthChecks: false}
	}
}

// TestUIServedWithoutToken: the page's files hold no data and load
// without a token, with a policy that confines the page to its node.
func TestUIServedWithoutToken(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth(), tokensSet())
	for target, wantType := range map[string]string{
		"/ui/": "text/html", "/ui/index.html": "text/html", "/ui/app.js": "javascript", "/ui/style.css": "text/css",
	} {
		rec := a.do("GET", target)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.Contains(ct, wantType) {
			t.Errorf("GET %s: Content-Type %q, want %s", target, ct, wantType)
		}
		for _, h := range []string{"Content-Security-Policy", "ETag", "X-Content-Type-Options"} {
			if rec.Header().Get(h) == "" {
				t.Errorf("GET %s: no %s header", target, h)
			}
		}
		if head := a.do("HEAD", target); head.Code != 200 || head.Body.Len() != 0 {
			t.Errorf("HEAD %s: %d with %d bytes", target, head.Code, head.Body.Len())
		}
	}
	// The data stays guarded.
	if rec := a.do("GET", "/api/v1/cluster/status"); rec.Code != 401 {
		t.Errorf("status without token: %d, want 401", rec.Code)
	}
}

func TestUIRoutesEdges(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth(), tokensSet())
	rec := a.do("GET", "/ui")
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want 301 to /ui/", rec.Code, rec.Header().Get("Location"))
	}
	rec = a.do("GET", "/ui/nothing.js")
	if rec.Code != 404 {
		t.Fatalf("GET /ui/nothing.js: %d", rec.Code)
	}
	envelopeOf(t, rec)
	for _, target := range []string{"/ui/", "/ui"} {
		rec = a.sendAs(testAdminToken, "POST", target, "")
		if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("POST %s: %d Allow %q, want 405 GET, HEAD", target, rec.Code, rec.Header().Get("Allow"))
		}
		envelopeOf(t, rec)
	}
	etag := a.do("GET", "/ui/app.js").Header().Get("ETag")
	for validator, want := range map[string]int{etag: http.StatusNotModified, `"other", ` + etag: http.StatusNotModified, `"other"`: 200} {
		r := httptest.NewRequest("GET", "/ui/app.js", nil)
		r.Header.Set("If-None-Match", validator)
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, r)
		if rec.Code != want || (want == http.StatusNotModified) != (rec.Body.Len() == 0) {
			t.Errorf("If-None-Match %s: %d with %d bytes, want %d", validator, rec.Code, rec.Body.Len(), want)
		}
	}
}

// TestUIAssetsSelfContained: the page loads nothing from elsewhere (no
// CDN: it must work offline), references only files that exist, builds
// its DOM from text rather than HTML, and reads only endpoints that exist
// and answer a read token.
func TestUIAssetsSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for _, name := range ui.Names() {
		asset, _ := ui.Lookup(name)
		body := strings.ReplaceAll(string(asset.Body), "http://www.w3.org/2000/svg", "")
		if m := external.FindString(body); m != "" {
			t.Errorf("%s refers to %q: the page must not load anything from elsewhere", name, m)
		}
	}
	page, _ := ui.Lookup("index.html")
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(page.Body), -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references %d files", len(refs))
	}
	for _, r := range refs {
		if strings.HasPrefix(r[1], "data:") {
			continue
		}
		if _, ok := ui.Lookup(r[1]); !ok {
			t.Errorf("index.html references %s, which is not embedded", r[1])
		}
	}

	js, _ := ui.Lookup("app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "localStorage", "method:"} {
		if strings.Contains(string(js.Body), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(&fakeOperator{}), tokensSet())
	// The page names its endpoints relative to /ui/: API + '/cluster/status'.
	base := regexp.MustCompile(`var API = '\.\./(api/v1)';`).FindStringSubmatch(string(js.Body))
	if base == nil {
		t.Fatal("app.js has no API base")
	}
	paths := regexp.MustCompile(`get\(API \+ '(/[a-z/]+)'\)`).FindAllStringSubmatch(string(js.Body), -1)
	if len(paths) < 3 {
		t.Fatalf("app.js reads %d endpoints", len(paths))
	}
	for _, p := range paths {
		target := "/" + base[1] + p[1]
		if rec := a.sendAs(testReadToken, "GET", target, ""); rec.Code != 200 {
			t.Errorf("the page reads %s, which answers %d with the read token", target, rec.Code)
		}
	}
	if !slices.Contains(ui.Names(), "index.html") {
		t.Error("index.html not listed")
	}
}
