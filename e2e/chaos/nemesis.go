package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// Event is one applied fault, as it happened.
type Event struct {
	Fault
	// Target describes what was hit ("node2", "{1} | {2,3}", ...).
	Target string
	Start  time.Time
	// End is when the heal finished (Start for an instantaneous fault).
	End time.Time
	// Err is a failure to apply or heal the fault (the run goes on).
	Err string
}

// nemesis applies faults to a cluster.
type nemesis struct {
	c     *cluster.Cluster
	token string
}

// heal undoes one fault; nil for faults that need nothing.
type heal func() error

// apply starts f and returns how to heal it.
func (m *nemesis) apply(ctx context.Context, f Fault) (string, heal, error) {
	r := rand.New(rand.NewPCG(f.Pick, 7))
	nodes := m.c.Nodes
	pick := func() *cluster.Node { return nodes[r.IntN(len(nodes))] }
	switch f.Kind {
	case PartitionHalves:
		perm := r.Perm(len(nodes))
		k := 1 + r.IntN(len(nodes)/2)
		var minority, majority []*cluster.Node
		for i, p := range perm {
			if i < k {
				minority = append(minority, nodes[p])
			} else {
				majority = append(majority, nodes[p])
			}
		}
		var links [][2]*cluster.Node
		for _, a := range minority {
			for _, b := range majority {
				links = append(links, [2]*cluster.Node{a, b})
			}
		}
		h, err := m.cut(links)
		return names(minority) + " | " + names(majority), h, err
	case MajorityRing:
		var links [][2]*cluster.Node
		desc := ""
		if len(nodes) <= 3 {
			// A ring of 3 is everybody connected: cut one link, so two
			// nodes each see a different majority through the third.
			i := r.IntN(len(nodes))
			j := (i + 1) % len(nodes)
			links = [][2]*cluster.Node{{nodes[i], nodes[j]}}
			desc = fmt.Sprintf("cut %s-%s", nodes[i].Name, nodes[j].Name)
		} else {
			// Nodes in a random ring order, each linked to its two
			// neighbours on either side: n=5 sees 3 of 5.
			perm := r.Perm(len(nodes))
			pos := make([]int, len(nodes))
			for i, p := range perm {
				pos[p] = i
			}
			// Neighbours on each side: 2*reach+1 nodes make a majority.
			reach := (len(nodes)/2 + 1) / 2
			var ring []string
			for _, p := range perm {
				ring = append(ring, nodes[p].Name)
			}
			for a := range nodes {
				for b := a + 1; b < len(nodes); b++ {
					d := (pos[a] - pos[b] + len(nodes)) % len(nodes)
					d = min(d, len(nodes)-d)
					if d > reach {
						links = append(links, [2]*cluster.Node{nodes[a], nodes[b]})
					}
				}
			}
			desc = "ring " + strings.Join(ring, "-")
		}
		h, err := m.cut(links)
		return desc, h, err
	case IsolatePrimary, IsolateCoord:
		s, err := m.view(ctx)
		if err != nil {
			return "", nil, err
		}
		id := s.PrimaryNodeID
		if f.Kind == IsolateCoord {
			id = s.Coordinator
		}
		n := m.node(id)
		if n == nil {
			return "", nil, fmt.Errorf("chaos: no %s in the cluster's view (node %d)", f.Kind, id)
		}
		if err := n.Isolate(); err != nil {
			return n.Name, nil, err
		}
		return n.Name, n.Heal, nil
	case KillDaemon, KillBoth:
		n := pick()
		if err := n.Signal(syscall.SIGKILL); err != nil {
			return n.Name, nil, err
		}
		waitExit(n)
		if f.Kind == KillBoth {
			err := n.CrashPostgres()
			if errors.Is(err, fs.ErrNotExist) {
				// No postmaster.pid: PostgreSQL was not running (fenced,
				// or being rewound); the daemon alone was there to kill.
				return n.Name + " (PostgreSQL was not running)", n.Start, nil
			}
			if err != nil {
				return n.Name, n.Start, fmt.Errorf("chaos: daemon killed, PostgreSQL not: %w", err)
			}
		}
		return n.Name, n.Start, nil
	case KillPostmaster:
		n, pid, err := m.withPostmaster(r.IntN(len(nodes)))
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("%s (pid %d)", n.Name, pid), nil, syscall.Kill(pid, syscall.SIGKILL)
	case StopDaemon:
		n := pick()
		if err := n.Signal(syscall.SIGSTOP); err != nil {
			return n.Name, nil, err
		}
		return n.Name, func() error { return n.Signal(syscall.SIGCONT) }, nil
	case StopPostmaster:
		n, pid, err := m.withPostmaster(r.IntN(len(nodes)))
		if err != nil {
			return "", nil, err
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return n.Name, nil, err
		}
		return fmt.Sprintf("%s (pid %d)", n.Name, pid), func() error {
			err := syscall.Kill(pid, syscall.SIGCONT)
			if errors.Is(err, syscall.ESRCH) {
				return nil // the daemon replaced it meanwhile
			}
			return err
		}, nil
	case Netem:
		n := pick()
		delay := 20 + r.IntN(180)
		jitter := delay / 4
		loss := 1 + r.IntN(20)
		args := []string{"delay", fmt.Sprintf("%dms", delay), fmt.Sprintf("%dms", jitter), "loss", fmt.Sprintf("%d%%", loss)}
		desc := fmt.Sprintf("%s %s", n.Name, strings.Join(args, " "))
		err := n.Netem(args...)
		if errors.Is(err, cluster.ErrNoNetem) {
			// No netem in this kernel: a slow link instead (token
			// bucket), whose queueing adds latency and drops.
			rate := fmt.Sprintf("%dkbit", 128<<r.IntN(4))
			desc = fmt.Sprintf("%s tbf rate %s latency 300ms (kernel without netem)", n.Name, rate)
			err = n.Throttle(rate, "300ms")
		}
		if err != nil {
			return desc, nil, err
		}
		return desc, n.ClearNetem, nil
	case Switchover:
		n := pick()
		return "asked " + n.Name, nil, m.switchover(ctx, n)
	case RestartNode:
		n := pick()
		if err := n.Stop(30 * time.Second); err != nil {
			return n.Name, n.Start, err
		}
		return n.Name, n.Start, nil
	}
	return "", nil, fmt.Errorf("chaos: unknown fault %q", f.Kind)
}

// withPostmaster returns the first node from index i on (wrapping) whose
// PostgreSQL runs, with its postmaster's PID: a node whose PostgreSQL is
// down (restarting, or stuck) would make the fault a no-op.
func (m *nemesis) withPostmaster(i int) (*cluster.Node, int, error) {
	var errs []error
	for k := range m.c.Nodes {
		n := m.c.Nodes[(i+k)%len(m.c.Nodes)]
		pid, err := n.PostmasterPID()
		if err == nil {
			return n, pid, nil
		}
		errs = append(errs, err)
	}
	return nil, 0, fmt.Errorf("chaos: no node runs PostgreSQL: %w", errors.Join(errs...))
}

// cut cuts links and returns the heal that restores them.
func (m *nemesis) cut(links [][2]*cluster.Node) (heal, error) {
	h := func() error {
		var errs []error
		for _, l := range links {
			errs = append(errs, m.c.HealLink(l[0], l[1]))
		}
		return errors.Join(errs...)
	}
	for _, l := range links {
		if err := m.c.CutLink(l[0], l[1]); err != nil {
			return h, err
		}
	}
	return h, nil
}

func (m *nemesis) node(id int) *cluster.Node {
	for _, n := range m.c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// view is the cluster status of the reachable node that knows the
// highest fencing token (asked from inside each node's namespace).
func (m *nemesis) view(ctx context.Context) (cluster.Status, error) {
	var best cluster.Status
	var errs []error
	for _, n := range m.c.Nodes {
		var s cluster.Status
		if err := m.get(ctx, n, "/api/v1/cluster/status", &s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		if s.FencingToken > best.FencingToken || (s.FencingToken == best.FencingToken && best.Coordinator == 0) {
			best = s
		}
	}
	if best.FencingToken == 0 {
		return best, fmt.Errorf("chaos: no node answers its status: %w", errors.Join(errs...))
	}
	return best, nil
}

// History is one entry of GET /api/v1/cluster/history.
type History struct {
	FencingToken uint64 `json:"fencing_token"`
	Old          int    `json:"old_primary"`
	New          int    `json:"new_primary"`
	Reason       string `json:"reason"`
	Timeline     uint32 `json:"timeline"`
	Time         string `json:"time"`
}

func (m *nemesis) history(ctx context.Context, n *cluster.Node) ([]History, error) {
	var h []History
	return h, m.get(ctx, n, "/api/v1/cluster/history", &h)
}

// get reads an API path of n into v (the data of the envelope).
func (m *nemesis) get(ctx context.Context, n *cluster.Node, path string, v any) error {
	body, code, err := m.call(ctx, n, http.MethodGet, path, 2*time.Second)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, code, body)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if len(env.Data) == 0 {
		env.Data = body
	}
	return json.Unmarshal(env.Data, v)
}

func (m *nemesis) switchover(ctx context.Context, n *cluster.Node) error {
	body, code, err := m.call(ctx, n, http.MethodPost, "/api/v1/cluster/switchover", 40*time.Second)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("switchover via %s: %d %s", n.Name, code, strings.TrimSpace(string(body)))
	}
	return nil
}

func (m *nemesis) call(ctx context.Context, n *cluster.Node, method, path string, timeout time.Duration) ([]byte, int, error) {
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, method, n.APIURL()+path, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+m.token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return b, resp.StatusCode, err
}

// waitExit waits up to 10 s for a killed daemon's process to be reaped.
func waitExit(n *cluster.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.Wait(ctx)
}

func names(ns []*cluster.Node) string {
	var ids []int
	for _, n := range ns {
		ids = append(ids, n.ID)
	}
	sort.Ints(ids)
	var s []string
	for _, id := range ids {
		s = append(s, fmt.Sprint(id))
	}
	return "{" + strings.Join(s, ",") + "}"
}
