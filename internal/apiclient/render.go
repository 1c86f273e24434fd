package apiclient

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// StatusNode is one entry of GET /api/v1/cluster/status.
type StatusNode struct {
	NodeID     int     `json:"node_id"`
	Name       string  `json:"name"`
	Role       string  `json:"role"`
	State      string  `json:"state"`
	Healthy    bool    `json:"healthy"`
	Timeline   uint32  `json:"timeline"`
	LSN        string  `json:"lsn"`
	LagBytes   uint64  `json:"lag_bytes"`
	LagSeconds float64 `json:"lag_seconds"`
	Streaming  bool    `json:"streaming"`
	APIURL     string  `json:"api_url"`
	PGHost     string  `json:"pg_host"`
	PGPort     int     `json:"pg_port"`
	LastSeenMS int64   `json:"last_seen_ms"`
	Self       bool    `json:"self"`
}

// Status is the data of GET /api/v1/cluster/status.
type Status struct {
	ClusterName   string       `json:"cluster_name"`
	PrimaryNodeID int          `json:"primary_node_id"`
	Nodes         []StatusNode `json:"nodes"`
	Warnings      []string     `json:"warnings"`
	FencingToken  uint64       `json:"fencing_token"`
	Coordinator   int          `json:"coordinator_node_id"`
	FailoverPhase string       `json:"failover_phase"`
	Maintenance   bool         `json:"maintenance"`
	SyncMode      string       `json:"synchronous_mode"`
	SyncStandbys  []int        `json:"synchronous_standbys"`
	SyncCount     int          `json:"synchronous_node_count"`
	// Election is the backend; CoordinationUnreachable (pglock) why the
	// coordination database counts as unreachable.
	Election                string `json:"election"`
	CoordinationUnreachable string `json:"coordination_unreachable"`
	Switchover              *struct {
		From        int    `json:"from"`
		To          int    `json:"to"`
		ScheduledAt string `json:"scheduled_at"`
	} `json:"switchover"`
}

// Node returns the entry for id.
func (s Status) Node(id int) (StatusNode, bool) {
	for _, n := range s.Nodes {
		if n.NodeID == id {
			return n, true
		}
	}
	return StatusNode{}, false
}

// Health is the data of GET /api/v1/cluster/health.
type Health struct {
	Status           string   `json:"status"`
	Reasons          []string `json:"reasons"`
	SecurityFindings []struct {
		NodeID  int    `json:"node_id"`
		Check   string `json:"check"`
		Message string `json:"message"`
	} `json:"security_findings"`
}

// PrintStatus renders a cluster status as patronictl list does: a header
// line and one row per node.
func PrintStatus(out io.Writer, s Status) {
	primary := "none"
	for _, n := range s.Nodes {
		if n.NodeID == s.PrimaryNodeID {
			primary = fmt.Sprintf("%s (node %d)", n.Name, n.NodeID)
		}
	}
	fmt.Fprintf(out, "Cluster: %s   Primary: %s   Token: %d   Coordinator: node %d\n", s.ClusterName, primary, s.FencingToken, s.Coordinator)
	if s.Election == "pglock" {
		fmt.Fprintln(out, "Election: pglock (state, coordinator lock and lease in the coordination database)")
	}
	if s.CoordinationUnreachable != "" {
		fmt.Fprintf(out, "Warning: %s\n", s.CoordinationUnreachable)
	}
	if s.Maintenance {
		fmt.Fprintln(out, "Maintenance mode: automatic failover is off")
	}
	if s.FailoverPhase != "" {
		fmt.Fprintf(out, "Failover in progress: %s\n", s.FailoverPhase)
	}
	if sw := s.Switchover; sw != nil {
		to := "the best replica"
		if sw.To != 0 {
			to = fmt.Sprintf("node %d", sw.To)
		}
		when := "now"
		if sw.ScheduledAt != "" {
			when = "at " + sw.ScheduledAt
		}
		fmt.Fprintf(out, "Switchover pending: node %d to %s, %s\n", sw.From, to, when)
	}
	if s.SyncMode != "" && s.SyncMode != "off" {
		fmt.Fprintf(out, "Synchronous: %s, %d of nodes %v\n", s.SyncMode, s.SyncCount, s.SyncStandbys)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tID\tROLE\tSTATE\tHEALTHY\tTL\tLSN\tLAG\tLAST SEEN\tAPI")
	for _, n := range s.Nodes {
		name := n.Name
		if n.Self {
			name += "*"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", name, n.NodeID, n.Role, n.State, yesNo(n.Healthy),
			n.Timeline, n.LSN, HumanBytes(n.LagBytes), (time.Duration(n.LastSeenMS) * time.Millisecond).String(), n.APIURL)
	}
	tw.Flush()
	for _, w := range s.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
}

// PrintHealth renders a cluster health answer.
func PrintHealth(out io.Writer, h Health) {
	fmt.Fprintf(out, "cluster is %s\n", h.Status)
	for _, r := range h.Reasons {
		fmt.Fprintf(out, "  - %s\n", r)
	}
	for _, f := range h.SecurityFindings {
		fmt.Fprintf(out, "security (node %d, %s): %s\n", f.NodeID, f.Check, f.Message)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// HumanBytes renders a byte count with binary units.
func HumanBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
