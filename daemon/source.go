package daemon

import (
	"github.com/ramd/ramd/api"
	"github.com/ramd/ramd/internal/version"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// publish records the latest local health and gossips this node's state.
func (d *Daemon) publish(h pg.Health) {
	d.mu.Lock()
	d.health = h
	ds, sysid := d.dataState, d.systemID
	d.mu.Unlock()
	if h.SystemID != 0 {
		sysid = h.SystemID
	}
	d.mesh.SetLocal(d.nodeState(h, ds, sysid, d.mesh.Members()))
}

// nodeState turns a health check into the state this node gossips.
func (d *Daemon) nodeState(h pg.Health, ds mesh.DataState, sysid uint64, members []mesh.Member) mesh.NodeState {
	c := d.cfg
	s := mesh.NodeState{
		NodeID:      c.Cluster.NodeID,
		Name:        c.Cluster.NodeName,
		ClusterName: c.Cluster.ClusterName,
		APIURL:      c.APIURL(),
		PGHost:      c.PostgreSQL.Host,
		PGPort:      c.PostgreSQL.Port,
		DataState:   ds,
		SystemID:    sysid,
		Role:        roleOf(h),
		PGRunning:   h.Running,
		Timeline:    h.Timeline,
		Streaming:   h.Streaming,
		PGVersion:   h.Version,
		Tags:        c.Cluster.Tags,
	}
	if wt := d.writer.get(); wt.Known {
		s.WriterToken, s.WriterTokenKnown = wt.Token, true
	}
	switch s.Role {
	case mesh.RolePrimary:
		s.LSN = uint64(h.CurrentLSN)
		s.ReplayLSN = uint64(h.CurrentLSN)
		s.Healthy = h.Running && h.Accepting
	case mesh.RoleReplica:
		s.LSN = uint64(max(h.ReceiveLSN, h.ReplayLSN))
		s.ReplayLSN = uint64(h.ReplayLSN)
		s.Healthy = h.Running && h.Accepting && h.Streaming
		s.LagSeconds = h.LagSeconds
		if p, ok := primaryOf(members, c.Cluster.NodeID); ok && p.LSN > s.LSN {
			// Patroni's definition: the primary's last known position
			// minus what this replica has received or replayed.
			s.LagBytes = p.LSN - s.LSN
		}
	}
	return s
}

func roleOf(h pg.Health) mesh.Role { return mesh.Role(h.Role()) }

// primaryOf returns the state of the alive primary with the highest
// timeline, other than self.
func primaryOf(members []mesh.Member, self int) (mesh.NodeState, bool) {
	var best mesh.NodeState
	found := false
	for _, m := range members {
		s := m.State
		if m.Liveness != mesh.Alive || s.NodeID == self || s.Role != mesh.RolePrimary {
			continue
		}
		if !found || s.Timeline > best.Timeline {
			best, found = s, true
		}
	}
	return best, found
}

// Members implements api.Source.
func (d *Daemon) Members() []mesh.Member { return d.mesh.Members() }

// LocalHealth implements api.Source.
func (d *Daemon) LocalHealth() pg.Health {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.health
}

// Node implements api.Source.
func (d *Daemon) Node() api.NodeInfo {
	c := d.cfg
	return api.NodeInfo{
		NodeID:        c.Cluster.NodeID,
		Name:          c.Cluster.NodeName,
		ClusterName:   c.Cluster.ClusterName,
		Version:       version.Version,
		DataDirectory: c.Cluster.DataDirectory,
		APIURL:        c.APIURL(),
		MeshAddr:      d.mesh.LocalAddr(),
		PGHost:        c.PostgreSQL.Host,
		PGPort:        c.PostgreSQL.Port,
		StartedAt:     d.startedAt,
		Tags:          c.Cluster.Tags,
	}
}

var _ api.Source = (*Daemon)(nil)
