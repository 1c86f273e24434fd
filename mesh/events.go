package mesh

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// events turns memberlist's membership callbacks into liveness in the
// view. memberlist calls EventDelegate methods while holding its node
// lock, so nothing here may call back into memberlist (Members,
// NumMembers, UpdateNode, or queueing a broadcast whose NumNodes would ask
// memberlist): that would deadlock.
type events struct {
	m *Mesh
}

var (
	_ memberlist.EventDelegate    = (*events)(nil)
	_ memberlist.PingDelegate     = (*events)(nil)
	_ memberlist.ConflictDelegate = (*events)(nil)
)

// NotifyJoin: the node is alive (new, or back from dead/left).
func (e *events) NotifyJoin(n *memberlist.Node) {
	e.alive(n, "member joined")
}

// NotifyUpdate: the node's metadata changed; it is alive.
func (e *events) NotifyUpdate(n *memberlist.Node) {
	e.alive(n, "member updated")
}

func (e *events) alive(n *memberlist.Node, what string) {
	m := e.m
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		m.log.Debug("ignoring undecodable node metadata", "node", n.Name, "err", err)
	}
	addr := n.Address()
	m.mu.Lock()
	changed := m.view.join(n.Name, addr, meta, m.now())
	m.afterLivenessLocked()
	m.mu.Unlock()
	if changed {
		if n.Name != m.cfg.NodeName {
			m.log.Info(what, "node", n.Name, "addr", addr, "node_id", meta.NodeID)
		}
		m.notify()
	}
}

// NotifyLeave: memberlist declared the node failed or it left. Which one
// the view decides from the leave notices it received (memberlist passes
// the same Node either way).
func (e *events) NotifyLeave(n *memberlist.Node) {
	m := e.m
	m.mu.Lock()
	changed := m.view.down(n.Name, n.Address(), m.now())
	var l Liveness
	if en, ok := m.view.entries[n.Name]; ok {
		l = en.liveness
	}
	m.afterLivenessLocked()
	m.mu.Unlock()
	if changed {
		if l == Left {
			m.log.Info("member left", "node", n.Name)
		} else {
			m.log.Warn("member failed", "node", n.Name, "liveness", string(l))
		}
		m.notify()
	}
}

// AckPayload adds nothing to our acks.
func (e *events) AckPayload() []byte { return nil }

// NotifyPingComplete: a direct probe of other was acked, which clears a
// suspicion we raised (memberlist sends no event when a suspect refutes).
func (e *events) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	m := e.m
	m.mu.Lock()
	changed := m.view.unsuspect(other.Name, m.now())
	m.mu.Unlock()
	if changed {
		m.log.Info("member no longer suspect", "node", other.Name)
		m.notify()
	}
}

// NotifyConflict: a node claims a known member's name from another
// address. memberlist refuses it until the known one has been dead for
// DeadNodeReclaimTime; that is expected briefly after a restart on a new
// port, and a configuration error (two daemons, one name) otherwise.
func (e *events) NotifyConflict(existing, other *memberlist.Node) {
	e.m.log.Warn("a node claims a member's name from another address; refused for now",
		"node", existing.Name, "known_addr", existing.Address(), "other_addr", other.Address())
}

// onSuspect is called by the log bridge when our probe of name failed.
func (m *Mesh) onSuspect(name string) {
	m.mu.Lock()
	changed := m.view.suspect(name, m.now())
	m.mu.Unlock()
	if changed {
		m.log.Info("member suspect", "node", name)
		m.notify()
	}
}
