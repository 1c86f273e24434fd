package mesh

import (
	"fmt"
	"net"
)

// Join contacts the daemon whose gossip address is addr (host:port) and
// merges memberships with it: the operator's add-node.
func (m *Mesh) Join(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("mesh: join: %q is not host:port: %w", addr, err)
	}
	if _, err := m.ml.Join([]string{addr}); err != nil {
		return fmt.Errorf("mesh: join %s: %w", addr, err)
	}
	return nil
}

// Forget drops a member that is no longer alive from the view (the
// operator's remove-node): it stops being listed at once instead of as
// dead or left until memberlist reaps it. A live member is kept: it would
// be re-learned from the next gossip anyway.
func (m *Mesh) Forget(nodeID int) bool {
	m.mu.Lock()
	forgot := false
	for name, e := range m.view.entries {
		if e.state.NodeID == nodeID && !isLive(e.liveness) && name != m.view.self {
			delete(m.view.entries, name)
			forgot = true
		}
	}
	m.mu.Unlock()
	if forgot {
		m.notify()
	}
	return forgot
}
