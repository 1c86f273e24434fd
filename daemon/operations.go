package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ramd/ramd/api"
	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// The cluster operations (api.Operator). Any node accepts them: the
// election carries a proposal made on a follower to the raft leader, so
// the caller gets the same answer whichever node it asked.

// propose runs fn (a proposal on the election node) on the election loop
// and returns its error.
func (d *Daemon) propose(ctx context.Context, fn func(n election.Backend) error) error {
	if d.failover == nil {
		return &api.OpError{Status: http.StatusServiceUnavailable, Message: "the election is not running on this node"}
	}
	done := make(chan error, 1)
	select {
	case d.failover.calls <- func() {
		if d.failover.node == nil {
			done <- errors.New("election: not started yet")
			return
		}
		done <- fn(d.failover.node)
	}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		switch {
		case err == nil:
			return nil
		case errors.Is(err, election.ErrRejected):
			return &api.OpError{Status: http.StatusConflict, Message: err.Error()}
		default:
			hint := "is a quorum of daemons up?"
			if d.cfg.Cluster.Election == "pglock" {
				hint = "is the coordination database reachable?"
			}
			return &api.OpError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("%v (%s)", err, hint)}
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// switchoverLagFloor: see checkSwitchover.
const switchoverLagFloor = 64 << 20

// Switchover implements api.Operator.
func (d *Daemon) Switchover(ctx context.Context, candidate int, at time.Time) (api.SwitchoverResult, error) {
	began := time.Now()
	st, _, _ := d.failover.Snapshot()
	if err := d.checkSwitchover(st, candidate); err != nil {
		return api.SwitchoverResult{}, err
	}
	var atMS int64
	if !at.IsZero() {
		atMS = at.UnixMilli()
	}
	err := d.propose(ctx, func(n election.Backend) error { return n.RequestSwitchover(uint64(candidate), atMS) })
	if err != nil {
		return api.SwitchoverResult{}, err
	}
	res := api.SwitchoverResult{OldPrimary: int(st.Primary)}
	if !at.IsZero() {
		// Scheduled: the primary steps down when its clock reaches at; the
		// candidate is checked again then (the coordinator's rules).
		res.ScheduledAt = at.UTC().Format(time.RFC3339)
		for {
			if now, _, _ := d.failover.Snapshot(); now.Switchover != nil && now.Switchover.ScheduledAt == atMS {
				return res, nil
			}
			select {
			case <-ctx.Done():
				return res, &api.OpError{Status: http.StatusServiceUnavailable, Message: "the switchover was proposed but not applied in time (is a quorum of daemons up?)"}
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	for {
		now, _, _ := d.failover.Snapshot()
		if now.Token > st.Token && now.Primary != st.Primary {
			if m, ok := d.mesh.Member(int(now.Primary)); ok && m.Liveness == mesh.Alive && m.State.Role == mesh.RolePrimary && m.State.Healthy {
				res.NewPrimary, res.FencingToken, res.TookMs = int(now.Primary), now.Token, time.Since(began).Milliseconds()
				return res, nil
			}
		}
		if now.Token == st.Token && now.Switchover == nil && time.Since(began) > 2*time.Second {
			return res, &api.OpError{Status: http.StatusConflict, Message: "the switchover was cancelled or refused before it started"}
		}
		select {
		case <-ctx.Done():
			return res, &api.OpError{Status: http.StatusGatewayTimeout, Message: fmt.Sprintf("switchover requested, but no new primary serves after %s; see /api/v1/cluster/status", time.Since(began).Round(time.Millisecond))}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkSwitchover refuses, before anything changes, a switchover that
// cannot succeed: 412 when no replica qualifies, 404 for an unknown node,
// 409 when the cluster state forbids it.
func (d *Daemon) checkSwitchover(st election.ClusterState, candidate int) error {
	switch {
	case !st.Bootstrapped || st.Primary == 0:
		return &api.OpError{Status: http.StatusConflict, Message: "the cluster has no primary yet"}
	case st.Maintenance:
		return &api.OpError{Status: http.StatusConflict, Message: "maintenance mode is on: turn it off before a switchover"}
	case st.Switchover != nil:
		return &api.OpError{Status: http.StatusConflict, Message: fmt.Sprintf("a switchover to node %d is already pending", st.Switchover.To)}
	case candidate != 0 && uint64(candidate) == st.Primary:
		return &api.OpError{Status: http.StatusPreconditionFailed, Message: fmt.Sprintf("node %d is already the primary", candidate)}
	}
	p, ok := d.mesh.Member(int(st.Primary))
	if !ok || p.Liveness != mesh.Alive || !p.State.Healthy || p.State.Role != mesh.RolePrimary {
		return &api.OpError{Status: http.StatusPreconditionFailed, Message: fmt.Sprintf("the primary (node %d) is not healthy: a switchover needs a running primary (use failover)", st.Primary)}
	}
	// The step-down waits until the streaming replicas hold every record,
	// so lag only costs time here; the bound refuses candidates far
	// behind. Gossiped positions can trail by a WAL segment (a segment
	// switch on the primary shows before the replica's next check), so
	// the bound is never below switchoverLagFloor.
	maxLag := max(uint64(d.effective().Failover.MaximumLagOnFailover), switchoverLagFloor)
	qualifies := func(m mesh.Member) string {
		switch {
		case m.Liveness != mesh.Alive:
			return "is not alive"
		case m.State.Role != mesh.RoleReplica || !m.State.Healthy || !m.State.Streaming:
			return "is not a healthy streaming replica"
		case isTrue(m.State.Tags["nofailover"]):
			return "is tagged nofailover"
		case m.State.LagBytes > maxLag:
			return fmt.Sprintf("lags %d bytes behind the primary (more than %d)", m.State.LagBytes, maxLag)
		}
		return ""
	}
	if candidate != 0 {
		m, ok := d.mesh.Member(candidate)
		if !ok {
			return &api.OpError{Status: http.StatusNotFound, Message: fmt.Sprintf("node %d is not a member of the cluster", candidate)}
		}
		if why := qualifies(m); why != "" {
			return &api.OpError{Status: http.StatusPreconditionFailed, Message: fmt.Sprintf("candidate node %d %s", candidate, why)}
		}
		return nil
	}
	for _, m := range d.mesh.Members() {
		if uint64(m.State.NodeID) != st.Primary && qualifies(m) == "" {
			return nil
		}
	}
	return &api.OpError{Status: http.StatusPreconditionFailed, Message: "no healthy streaming replica to switch over to"}
}

// Failover implements api.Operator: a manual failover. It is refused
// while the primary is healthy (a switchover is the tool then). The
// coordinator still revokes and waits out the old lease before promoting;
// without allowDataLoss it promotes the candidate only if it holds every
// acknowledged commit (the synchronous bar) and is not behind another
// replica. If the candidate does not qualify in time the request is
// withdrawn and the answer says why.
func (d *Daemon) Failover(ctx context.Context, candidate int, allowDataLoss bool) (api.SwitchoverResult, error) {
	began := time.Now()
	st, _, _ := d.failover.Snapshot()
	if !st.Bootstrapped || st.Primary == 0 {
		return api.SwitchoverResult{}, &api.OpError{Status: http.StatusConflict, Message: "the cluster has no primary yet"}
	}
	if uint64(candidate) == st.Primary {
		return api.SwitchoverResult{}, &api.OpError{Status: http.StatusPreconditionFailed, Message: fmt.Sprintf("node %d is already the primary", candidate)}
	}
	if p, ok := d.mesh.Member(int(st.Primary)); ok && p.Liveness == mesh.Alive && p.State.Healthy && p.State.Role == mesh.RolePrimary {
		return api.SwitchoverResult{}, &api.OpError{Status: http.StatusConflict, Message: fmt.Sprintf("the primary (node %d) is healthy: use a switchover", st.Primary)}
	}
	m, ok := d.mesh.Member(candidate)
	switch {
	case !ok:
		return api.SwitchoverResult{}, &api.OpError{Status: http.StatusNotFound, Message: fmt.Sprintf("node %d is not a member of the cluster", candidate)}
	case m.Liveness != mesh.Alive || !m.State.PGRunning || m.State.Role != mesh.RoleReplica:
		return api.SwitchoverResult{}, &api.OpError{Status: http.StatusPreconditionFailed, Message: fmt.Sprintf("candidate node %d is not a running replica", candidate)}
	}
	if err := d.propose(ctx, func(n election.Backend) error { return n.RequestFailover(uint64(candidate), allowDataLoss) }); err != nil {
		return api.SwitchoverResult{}, err
	}
	res := api.SwitchoverResult{OldPrimary: int(st.Primary)}
	for {
		now, _, phase := d.failover.Snapshot()
		if now.Token > st.Token {
			if now.Primary != uint64(candidate) {
				return res, &api.OpError{Status: http.StatusConflict, Message: fmt.Sprintf("node %d was promoted instead (token %d)", now.Primary, now.Token)}
			}
			if m, ok := d.mesh.Member(candidate); ok && m.Liveness == mesh.Alive && m.State.Role == mesh.RolePrimary && m.State.Healthy {
				res.NewPrimary, res.FencingToken, res.TookMs = candidate, now.Token, time.Since(began).Milliseconds()
				return res, nil
			}
		}
		select {
		case <-ctx.Done():
			// Withdraw it rather than let it fire later unexpectedly.
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = d.propose(cctx, func(n election.Backend) error { return n.CancelFailover() })
			cancel()
			why := phase
			if why == "" {
				why = "no coordinator progress"
			}
			return res, &api.OpError{Status: http.StatusPreconditionFailed, Message: fmt.Sprintf("manual failover to node %d did not complete in %s and was withdrawn: %s (allow_data_loss forces it)", candidate, time.Since(began).Round(time.Millisecond), why)}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SetReplication implements api.Operator: detach a replica from streaming
// or re-attach it. The decision is replicated (every coordinator leaves a
// detached replica out of failovers and synchronous sets); the node itself
// stops or restarts its WAL receiver. It returns once the node's gossiped
// state shows it, or ctx ends.
func (d *Daemon) SetReplication(ctx context.Context, node int, attached bool) error {
	st, _, _ := d.failover.Snapshot()
	m, ok := d.mesh.Member(node)
	switch {
	case !ok:
		return &api.OpError{Status: http.StatusNotFound, Message: fmt.Sprintf("node %d is not a member of the cluster", node)}
	case !attached && uint64(node) == st.Primary:
		return &api.OpError{Status: http.StatusConflict, Message: fmt.Sprintf("node %d is the primary; only a replica can be detached", node)}
	case m.Liveness != mesh.Alive:
		return &api.OpError{Status: http.StatusPreconditionFailed, Message: fmt.Sprintf("node %d is %s", node, m.Liveness)}
	}
	if err := d.propose(ctx, func(n election.Backend) error { return n.SetDetached(uint64(node), !attached) }); err != nil {
		return err
	}
	for {
		now, _, _ := d.failover.Snapshot()
		applied := slices.Contains(now.Detached, uint64(node)) != attached
		if m, ok := d.mesh.Member(node); applied && ok && m.State.Streaming == attached {
			return nil
		}
		select {
		case <-ctx.Done():
			if applied {
				return &api.OpError{Status: http.StatusAccepted, Message: fmt.Sprintf("recorded; node %d has not reported the change yet", node)}
			}
			return &api.OpError{Status: http.StatusServiceUnavailable, Message: "the change was proposed but not applied in time (is a quorum of daemons up?)"}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// AddNode implements api.Operator: join the daemon at address:port to
// the mesh, then add it to the raft group (a learner when the voter cap
// is reached). It returns once the node is a member.
func (d *Daemon) AddNode(ctx context.Context, id int, address string, port int) (api.NodeMembership, error) {
	addr := net.JoinHostPort(address, strconv.Itoa(port))
	if m, ok := d.mesh.Member(id); !ok || m.Liveness != mesh.Alive {
		if err := d.mesh.Join(addr); err != nil {
			return api.NodeMembership{}, &api.OpError{Status: http.StatusBadGateway, Message: fmt.Sprintf("cannot reach node %d's gossip address: %v", id, err)}
		}
	}
	for {
		m, ok := d.mesh.Member(id)
		if ok && m.Liveness == mesh.Alive {
			break
		}
		select {
		case <-ctx.Done():
			return api.NodeMembership{}, &api.OpError{Status: http.StatusBadGateway, Message: fmt.Sprintf("joined %s, but no node %d is alive there (check its [cluster] node_id and cluster_name)", addr, id)}
		case <-time.After(50 * time.Millisecond):
		}
	}
	if st, _, _ := d.failover.Snapshot(); !slices.Contains(st.Voters, uint64(id)) && !slices.Contains(st.Learners, uint64(id)) {
		if err := d.propose(ctx, func(n election.Backend) error { return n.AddMember(uint64(id)) }); err != nil {
			return api.NodeMembership{}, err
		}
	}
	for {
		st, _, _ := d.failover.Snapshot()
		switch {
		case slices.Contains(st.Voters, uint64(id)):
			return api.NodeMembership{NodeID: id, Role: "voter"}, nil
		case slices.Contains(st.Learners, uint64(id)):
			return api.NodeMembership{NodeID: id, Role: "learner"}, nil
		}
		select {
		case <-ctx.Done():
			return api.NodeMembership{}, &api.OpError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("node %d joined the mesh but was not added to the cluster in time (is a quorum of daemons up?)", id)}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RemoveNode implements api.Operator: remove a stopped node from the raft
// group (and so from any synchronous set and failover choice) and from
// the mesh view. A running node is refused — stop its daemon first, or it
// would simply be seen again — and so is the primary.
func (d *Daemon) RemoveNode(ctx context.Context, id int) error {
	st, _, _ := d.failover.Snapshot()
	m, inMesh := d.mesh.Member(id)
	member := slices.Contains(st.Voters, uint64(id)) || slices.Contains(st.Learners, uint64(id))
	switch {
	case !inMesh && !member:
		return &api.OpError{Status: http.StatusNotFound, Message: fmt.Sprintf("node %d is not a member of the cluster", id)}
	case uint64(id) == st.Primary:
		return &api.OpError{Status: http.StatusConflict, Message: fmt.Sprintf("node %d is the primary: switch over first", id)}
	case id == d.cfg.Cluster.NodeID:
		return &api.OpError{Status: http.StatusConflict, Message: fmt.Sprintf("node %d is the node you asked: ask another node", id)}
	case inMesh && (m.Liveness == mesh.Alive || m.Liveness == mesh.Suspect):
		return &api.OpError{Status: http.StatusConflict, Message: fmt.Sprintf("node %d is running: stop its daemon (ramd stop) before removing it", id)}
	}
	if member {
		if err := d.propose(ctx, func(n election.Backend) error { return n.RemoveMember(uint64(id)) }); err != nil {
			return err
		}
		for {
			st, _, _ := d.failover.Snapshot()
			if !slices.Contains(st.Voters, uint64(id)) && !slices.Contains(st.Learners, uint64(id)) {
				break
			}
			select {
			case <-ctx.Done():
				return &api.OpError{Status: http.StatusServiceUnavailable, Message: "the removal was proposed but not applied in time (is a quorum of daemons up?)"}
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	d.mesh.Forget(id)
	return nil
}

// CancelSwitchover implements api.Operator.
func (d *Daemon) CancelSwitchover(ctx context.Context) error {
	st, _, _ := d.failover.Snapshot()
	if st.Switchover == nil {
		return &api.OpError{Status: http.StatusNotFound, Message: "no switchover is pending"}
	}
	if err := d.propose(ctx, func(n election.Backend) error { return n.CancelSwitchover() }); err != nil {
		return err
	}
	for {
		if now, _, _ := d.failover.Snapshot(); now.Switchover == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return &api.OpError{Status: http.StatusServiceUnavailable, Message: "the cancellation was proposed but not applied in time"}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SetMaintenance implements api.Operator; it returns once the change is
// applied on this node.
func (d *Daemon) SetMaintenance(ctx context.Context, on bool) error {
	if err := d.propose(ctx, func(n election.Backend) error { return n.SetMaintenance(on) }); err != nil {
		return err
	}
	for {
		if st, _, _ := d.failover.Snapshot(); st.Maintenance == on {
			return nil
		}
		select {
		case <-ctx.Done():
			return &api.OpError{Status: http.StatusServiceUnavailable, Message: "maintenance change proposed but not applied in time (is a quorum of daemons up?)"}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// History implements api.Operator.
func (d *Daemon) History() []api.HistoryEntry {
	if d.failover == nil {
		return nil
	}
	st, _, _ := d.failover.Snapshot()
	out := make([]api.HistoryEntry, 0, len(st.History))
	for _, h := range st.History {
		e := api.HistoryEntry{FencingToken: h.Token, Old: int(h.Old), New: int(h.New), Reason: h.Reason, Timeline: h.Timeline, LSN: pg.LSN(h.LSN).String()}
		if h.Time != 0 {
			e.Time = time.UnixMilli(h.Time).UTC().Format(time.RFC3339Nano)
		}
		out = append(out, e)
	}
	return out
}
