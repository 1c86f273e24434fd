package daemon

import (
	"github.com/ramd/ramd/api"
)

// SecurityFindings implements api.SecurityReporter: the weaknesses of
// this node's setup that /api/v1/cluster/health reports (the daemon also
// warns about them once at startup).
func (d *Daemon) SecurityFindings() []api.SecurityFinding {
	return securityFindings(d.cfg.Cluster.NodeID, d.mesh.Encrypted(), d.cfg.Mesh.BindAddr,
		d.cfg.API.SSLEnabled, d.cfg.API.Host, d.adminToken != "" || d.cfg.API.ReadToken != "")
}

// securityFindings: gossip in plaintext where others can reach it (anyone
// on that network can join, forge states and vote), and bearer tokens
// sent over plain HTTP off loopback (anyone watching the traffic can
// take them). Loopback binds are a single host's business.
func securityFindings(nodeID int, encrypted bool, meshBind string, tls bool, apiHost string, tokens bool) []api.SecurityFinding {
	var out []api.SecurityFinding
	if !encrypted && !isLoopback(meshBind) {
		out = append(out, api.SecurityFinding{NodeID: nodeID, Check: "gossip_encryption",
			Message: "gossip on " + meshBind + " is not encrypted: anyone who reaches the gossip port can join the cluster, forge node states and vote; set [mesh] encrypt_key (ramd keygen) on every node"})
	}
	if !tls && tokens && !isLoopback(apiHost) {
		out = append(out, api.SecurityFinding{NodeID: nodeID, Check: "api_tls",
			Message: "the API is plain HTTP on " + apiHost + ": bearer tokens cross the network in clear text; set [api] ssl_enabled with cert_file and key_file"})
	}
	return out
}
