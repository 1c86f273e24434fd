package api

import (
	"net/http"
	"testing"
)

func TestAuth(t *testing.T) {
	const swo = "/api/v1/cluster/switchover"
	type req struct {
		token, method, path string
		want                int
	}
	cases := []struct {
		name string
		auth AuthConfig
		reqs []req
	}{
		{"no tokens: reads open, changes refused", AuthConfig{PublicHealthChecks: true}, []req{
			{"", "GET", "/api/v1/cluster/status", 200},
			{"", "POST", swo, 403},
			{"anything", "POST", swo, 403},
			{"", "GET", "/primary", 200},
		}},
		{"admin and read tokens", AuthConfig{AdminToken: testAdminToken, ReadToken: testReadToken, PublicHealthChecks: true}, []req{
			{"", "POST", swo, 401},
			{"wrong-token-0123456789", "POST", swo, 401},
			{testReadToken, "POST", swo, 403},
			{testAdminToken, "POST", swo, 200},
			{"", "GET", "/api/v1/cluster/status", 401},
			{testReadToken, "GET", "/api/v1/cluster/status", 200},
			{testAdminToken, "GET", "/api/v1/cluster/history", 200},
			{"", "GET", "/api/v1/health", 200},
			{"", "OPTIONS", "/primary", 200},
			{"", "GET", "/replica", 503},
			{"", "PUT", "/api/v1/cluster/status", 405},
		}},
		{"checks closed", AuthConfig{AdminToken: testAdminToken, PublicHealthChecks: false}, []req{
			{"", "OPTIONS", "/primary", 401},
			{testAdminToken, "OPTIONS", "/primary", 200},
			{"", "GET", "/api/v1/health", 401},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op := &fakeOperator{}
			a := newTestAPI(t, 1, primaryHealth(), func(cfg *Config, f *fakeSource) {
				op.fakeSource = f
				cfg.Source = op
				cfg.Auth = c.auth
			})
			for _, r := range c.reqs {
				rec := a.sendAs(r.token, r.method, r.path, "")
				if rec.Code != r.want {
					t.Errorf("%s %s with %q: %d, want %d: %s", r.method, r.path, r.token, rec.Code, r.want, rec.Body)
				}
				if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s: 401 without WWW-Authenticate", r.method, r.path)
				}
			}
		})
	}
}
