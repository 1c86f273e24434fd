package api

import (
	"testing"
)

// reportingSource adds security findings to the fake source.
type reportingSource struct {
	*fakeSource
	findings []SecurityFinding
}

func (r *reportingSource) SecurityFindings() []SecurityFinding { return r.findings }

func TestClusterHealthSecurityFindings(t *testing.T) {
	type health struct {
		Status           string            `json:"status"`
		SecurityFindings []SecurityFinding `json:"security_findings"`
	}
	// Without a reporter: an empty list, never null.
	a := newTestAPI(t, 1, primaryHealth())
	env := envelopeOf(t, a.do("GET", "/api/v1/cluster/health"))
	if h := decodeData[health](t, env); h.SecurityFindings == nil || len(h.SecurityFindings) != 0 {
		t.Fatalf("findings without a reporter: %+v", h)
	}
	finding := SecurityFinding{NodeID: 1, Check: "gossip_encryption", Message: "gossip on 0.0.0.0 is not encrypted"}
	rs := &reportingSource{findings: []SecurityFinding{finding}}
	a = newTestAPI(t, 1, primaryHealth(), func(c *Config, f *fakeSource) { rs.fakeSource = f; c.Source = rs })
	rec := a.do("GET", "/api/v1/cluster/health")
	h := decodeData[health](t, envelopeOf(t, rec))
	if len(h.SecurityFindings) != 1 || h.SecurityFindings[0] != finding {
		t.Fatalf("findings: %+v", h.SecurityFindings)
	}
	// A finding is not an outage: the verdict and the status code stay.
	if h.Status != clusterHealthy || rec.Code != 200 {
		t.Fatalf("a finding changed the verdict: %s %d", h.Status, rec.Code)
	}
}
