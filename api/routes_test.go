package api

import (
	"net/http"
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/gorilla/mux"
)

// publicRoutes are the only routes open without a token once tokens are
// set (with public_health_checks): the load-balancer checks and
// /api/v1/health. Adding a route here is a security decision.
var publicRoutes = []string{
	"/", "/primary", "/read-write", "/leader", "/replica", "/read-only",
	"/health", "/liveness", "/readiness", "/api/v1/health",
}

// staticRoutes serve the cluster page's embedded files (package ui),
// which hold no cluster data: open to anyone, whatever the tokens. The
// page reads the data through the guarded read routes with the user's
// token. Adding a route here is a security decision too.
var staticRoutes = []string{"/ui", "/ui/"}

var everyMethod = []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "PROPFIND"}

type routeMethods struct {
	template, target string
	methods          []string // the methods the route serves (not 405)
}

// walkRoutes lists every route registered on the router, with the methods
// it serves, found by asking it with the admin token.
func walkRoutes(t *testing.T) []routeMethods {
	t.Helper()
	s, h, err := newServer(Config{Source: &fakeSource{members: threeNodes(1), health: primaryHealth(), node: testNodeInfo(1, "pg1")},
		Auth: AuthConfig{AdminToken: testAdminToken, ReadToken: testReadToken, PublicHealthChecks: true}})
	if err != nil {
		t.Fatal(err)
	}
	vars := regexp.MustCompile(`\{[^}]*\}`)
	var out []routeMethods
	err = s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if route.GetHandler() == nil {
			return nil // a subrouter's prefix
		}
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		rm := routeMethods{template: tpl, target: vars.ReplaceAllString(tpl, "1")}
		for _, m := range everyMethod {
			a := &testAPI{h: h}
			if rec := a.sendAs(testAdminToken, m, rm.target, ""); rec.Code != http.StatusMethodNotAllowed {
				rm.methods = append(rm.methods, m)
			}
		}
		if len(rm.methods) == 0 {
			t.Errorf("%s serves no method", tpl)
		}
		out = append(out, rm)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The walk must see what we know is there, or it proves nothing.
	var tpls []string
	for _, r := range out {
		tpls = append(tpls, r.template)
	}
	for _, want := range append(append(append([]string{}, publicRoutes...), staticRoutes...), "/api/v1/cluster/switchover", "/api/v1/cluster/failover",
		"/api/v1/cluster/maintenance", "/api/v1/cluster/nodes/{id}", "/api/v1/cluster/status") {
		if !slices.Contains(tpls, want) {
			t.Errorf("route %s not found by the walk (found %v)", want, tpls)
		}
	}
	// Rate limiting exempts exactly the public routes.
	var exempt []string
	for p := range s.exempt {
		exempt = append(exempt, p)
	}
	sort.Strings(exempt)
	pub := slices.Sorted(slices.Values(publicRoutes))
	if !slices.Equal(exempt, pub) {
		t.Errorf("rate-limit exemptions %v, want the public routes %v", exempt, pub)
	}
	return out
}

// TestRouteTable checks the access rules on every route the router holds,
// so that no route added later escapes them.
func TestRouteTable(t *testing.T) {
	routes := walkRoutes(t)
	const wrong = "wrong-token-0123456789abcdef"
	type check struct {
		token string
		want  func(code int) bool
		what  string
	}
	is := func(c int) func(int) bool { return func(code int) bool { return code == c } }
	// 501: the route's operator is not part of this fake source; the
	// token check came first and passed.
	passes := func(code int) bool {
		return code != 401 && code != 403 && code != 405 && code < 500 || code == 503 || code == 501
	}
	// Reads that hand out data (a whole base backup) need the admin token.
	adminReads := []string{"/api/v1/backup/{name}/download"}

	for _, tc := range []struct {
		name string
		auth AuthConfig
		// mutating and read give the expected outcome per token.
		mutating func(public bool) []check
		read     func(public bool) []check
	}{
		{
			name: "admin and read tokens, public checks",
			auth: AuthConfig{AdminToken: testAdminToken, ReadToken: testReadToken, PublicHealthChecks: true},
			mutating: func(bool) []check {
				return []check{{"", is(401), "401"}, {wrong, is(401), "401"}, {testReadToken, is(403), "403"}, {testAdminToken, passes, "allowed"}}
			},
			read: func(public bool) []check {
				if public {
					return []check{{"", passes, "allowed"}, {wrong, passes, "allowed"}, {testReadToken, passes, "allowed"}}
				}
				return []check{{"", is(401), "401"}, {wrong, is(401), "401"}, {testReadToken, passes, "allowed"}, {testAdminToken, passes, "allowed"}}
			},
		},
		{
			name: "admin token only, checks closed",
			auth: AuthConfig{AdminToken: testAdminToken},
			mutating: func(bool) []check {
				return []check{{"", is(401), "401"}, {wrong, is(401), "401"}, {testReadToken, is(401), "401"}, {testAdminToken, passes, "allowed"}}
			},
			read: func(bool) []check {
				return []check{{"", is(401), "401"}, {wrong, is(401), "401"}, {testAdminToken, passes, "allowed"}}
			},
		},
		{
			name: "no tokens",
			auth: AuthConfig{PublicHealthChecks: true},
			mutating: func(bool) []check {
				return []check{{"", is(403), "403"}, {wrong, is(403), "403"}, {testAdminToken, is(403), "403"}}
			},
			read: func(bool) []check {
				return []check{{"", passes, "allowed"}, {wrong, passes, "allowed"}}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := &fakeOperator{}
			a := newTestAPI(t, 1, primaryHealth(), withOperator(op), func(c *Config, _ *fakeSource) { c.Auth = tc.auth })
			for _, r := range routes {
				public := slices.Contains(publicRoutes, r.template)
				for _, m := range r.methods {
					checks := tc.read(public)
					if slices.Contains(staticRoutes, r.template) {
						if mutating(m) {
							t.Errorf("%s %s: the page's files must be read-only", m, r.template)
						}
						checks = []check{{"", passes, "allowed"}, {wrong, passes, "allowed"}, {testReadToken, passes, "allowed"}, {testAdminToken, passes, "allowed"}}
					}
					if mutating(m) || slices.Contains(adminReads, r.template) {
						checks = tc.mutating(public)
					}
					for _, c := range checks {
						if rec := a.sendAs(c.token, m, r.target, ""); !c.want(rec.Code) {
							t.Errorf("%s %s with token %q: %d, want %s", m, r.target, c.token, rec.Code, c.what)
						}
					}
				}
			}
		})
	}
}

// TestMutatingRoutesKnown pins the list of routes that change something,
// so that a new one is a deliberate, reviewed addition.
func TestMutatingRoutesKnown(t *testing.T) {
	var got []string
	for _, r := range walkRoutes(t) {
		for _, m := range r.methods {
			if mutating(m) {
				got = append(got, m+" "+r.template)
			}
		}
	}
	want := []string{
		"POST /api/v1/cluster/switchover", "DELETE /api/v1/cluster/switchover",
		"POST /api/v1/cluster/failover", "POST /api/v1/cluster/maintenance",
		"POST /api/v1/replication/stop", "POST /api/v1/replication/start",
		"POST /api/v1/cluster/add-node", "DELETE /api/v1/cluster/remove-node",
		"DELETE /api/v1/cluster/nodes/{id}",
		"POST /api/v1/backup/create", "POST /api/v1/backup/restore", "DELETE /api/v1/backup/{name:.+}",
		"PATCH /api/v1/cluster/config", "POST /api/v1/node/restart", "POST /api/v1/node/reload",
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("mutating routes %v, want %v", got, want)
	}
}
