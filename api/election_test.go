package api

import (
	"encoding/json"
	"net/http"
	"testing"
)

// electedSource is a source taking part in an election.
type electedSource struct {
	*fakeSource
	lease bool
	info  ElectionInfo
}

func (e *electedSource) HoldsLease() bool       { return e.lease }
func (e *electedSource) Election() ElectionInfo { return e.info }

func withElection(e *electedSource) apiOption {
	return func(c *Config, f *fakeSource) { e.fakeSource = f; c.Source = e }
}

func TestPrimaryCheckNeedsTheLease(t *testing.T) {
	for _, lease := range []bool{true, false} {
		e := &electedSource{lease: lease}
		a := newTestAPI(t, 1, primaryHealth(), withElection(e), quiet())
		want := http.StatusOK
		if !lease {
			want = http.StatusServiceUnavailable
		}
		for _, path := range []string{"/primary", "/read-write", "/leader", "/"} {
			if got := a.do(http.MethodOptions, path).Code; got != want {
				t.Errorf("lease=%v OPTIONS %s = %d, want %d", lease, path, got, want)
			}
		}
	}
}

func TestClusterStatusReportsElection(t *testing.T) {
	tests := []struct {
		name    string
		info    ElectionInfo
		primary int
	}{
		{"elected primary alive", ElectionInfo{Bootstrapped: true, PrimaryNodeID: 1, Token: 3, CoordinatorNodeID: 2}, 1},
		// pg2 is alive but a replica: the election names it, yet it does
		// not serve as primary yet, so nobody is reported.
		{"elected primary not serving yet", ElectionInfo{Bootstrapped: true, PrimaryNodeID: 2, Token: 4, CoordinatorNodeID: 2, Phase: "proposed"}, 0},
		{"not bootstrapped: gossip decides", ElectionInfo{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &electedSource{lease: true, info: tt.info}
			a := newTestAPI(t, 1, primaryHealth(), withElection(e), quiet())
			rec := a.do(http.MethodGet, "/api/v1/cluster/status")
			var env struct {
				Data clusterStatus `json:"data"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
				t.Fatal(err)
			}
			if env.Data.PrimaryNodeID != tt.primary || env.Data.FencingToken != tt.info.Token || env.Data.CoordinatorNodeID != tt.info.CoordinatorNodeID || env.Data.FailoverPhase != tt.info.Phase {
				t.Fatalf("got primary=%d token=%d coordinator=%d phase=%q; want %d %d %d %q", env.Data.PrimaryNodeID, env.Data.FencingToken,
					env.Data.CoordinatorNodeID, env.Data.FailoverPhase, tt.primary, tt.info.Token, tt.info.CoordinatorNodeID, tt.info.Phase)
			}
		})
	}
}
