package cluster

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ramd/ramd/internal/apiclient"
)

// Status is the data of GET /api/v1/cluster/status.
type Status = apiclient.Status

// Client returns an API client for this node.
func (n *Node) Client() *apiclient.Client {
	return &apiclient.Client{URLs: []string{n.APIURL()}, Token: n.c.Token, Timeout: 2 * time.Second, HTTP: n.c.opts.HTTP}
}

// Status asks this node's API for the cluster status.
func (n *Node) Status(ctx context.Context) (Status, error) {
	var s Status
	r, err := n.Client().Get(ctx, "/api/v1/cluster/status")
	if err != nil {
		return s, err
	}
	return s, r.Decode(&s)
}

// Formed reports whether every running node agrees on one healthy primary
// that holds its lease and every other node is a healthy, streaming
// replica. It returns a reason
// when not.
func (c *Cluster) Formed(ctx context.Context) (Status, bool, string) {
	var first Status
	for i, n := range c.Nodes {
		if !n.Running() {
			return first, false, n.Name + " is not running"
		}
		s, err := n.Status(ctx)
		if err != nil {
			return first, false, fmt.Sprintf("%s: %v", n.Name, err)
		}
		if i == 0 {
			first = s
		}
		if s.PrimaryNodeID == 0 {
			return first, false, n.Name + " sees no primary"
		}
		if s.PrimaryNodeID != first.PrimaryNodeID {
			return first, false, fmt.Sprintf("%s sees primary %d, %s sees %d", c.Nodes[0].Name, first.PrimaryNodeID, n.Name, s.PrimaryNodeID)
		}
		if len(s.Nodes) != len(c.Nodes) {
			return first, false, fmt.Sprintf("%s sees %d of %d nodes", n.Name, len(s.Nodes), len(c.Nodes))
		}
		for _, ns := range s.Nodes {
			switch {
			case ns.State != "alive":
				return first, false, fmt.Sprintf("%s sees %s %s", n.Name, ns.Name, ns.State)
			case !ns.Healthy:
				return first, false, fmt.Sprintf("%s sees %s unhealthy (%s)", n.Name, ns.Name, ns.Role)
			case ns.NodeID == s.PrimaryNodeID && ns.Role != "primary":
				return first, false, fmt.Sprintf("%s sees %s as %s", n.Name, ns.Name, ns.Role)
			case ns.NodeID != s.PrimaryNodeID && (ns.Role != "replica" || !ns.Streaming):
				return first, false, fmt.Sprintf("%s sees %s as %s (streaming=%v)", n.Name, ns.Name, ns.Role, ns.Streaming)
			}
		}
	}
	// The primary must also hold its lease: /primary answers 200 only then.
	for _, n := range c.Nodes {
		if n.ID == first.PrimaryNodeID {
			if code := n.c.statusCode(ctx, "GET", n.APIURL()+"/primary"); code != 200 {
				return first, false, fmt.Sprintf("%s's /primary answers %d (lease not held yet)", n.Name, code)
			}
		}
	}
	return first, true, ""
}

// WaitFormed polls until Formed or ctx ends; the error carries the last
// reason the cluster was not formed.
func (c *Cluster) WaitFormed(ctx context.Context) (Status, error) {
	reason := "not checked yet"
	for {
		s, ok, why := c.Formed(ctx)
		if ok {
			return s, nil
		}
		reason = why
		for _, n := range c.Nodes {
			if n.cmd != nil && !n.Running() {
				return s, fmt.Errorf("cluster: %s exited; see %s", n.Name, n.LogPath)
			}
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("cluster: not formed: %s", reason)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StatusCode returns the HTTP status of method url (0 when unreachable).
func StatusCode(ctx context.Context, method, url string) int {
	return statusCode(ctx, checkClient, method, url)
}

// statusCode is StatusCode with the cluster's client (Options.HTTP).
func (c *Cluster) statusCode(ctx context.Context, method, url string) int {
	hc := checkClient
	if c.opts.HTTP != nil {
		hc = c.opts.HTTP
	}
	return statusCode(ctx, hc, method, url)
}

func statusCode(ctx context.Context, hc *http.Client, method, url string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

var checkClient = &http.Client{Timeout: 2 * time.Second}
