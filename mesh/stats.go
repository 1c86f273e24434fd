package mesh

import "sync/atomic"

// Stats are cumulative counters since New, for the metrics package.
type Stats struct {
	// MessagesReceived counts user messages (broadcasts, reliable
	// messages) and push/pull snapshots received.
	MessagesReceived uint64
	// MessagesDropped counts messages or snapshot entries dropped as
	// malformed, oversized, of an unknown kind or version.
	MessagesDropped uint64
	// StatesApplied counts received states that were newer than ours.
	StatesApplied uint64
	// StatesRejected counts states of another cluster or claiming our
	// own name from another boot.
	StatesRejected uint64
	// BroadcastsQueued counts messages queued for gossip (own states,
	// refreshes, relayed states, leave notices).
	BroadcastsQueued uint64
}

type counters struct {
	received, dropped, applied, rejected, queued atomic.Uint64
}

// Stats returns the counters.
func (m *Mesh) Stats() Stats {
	return Stats{
		MessagesReceived: m.stats.received.Load(),
		MessagesDropped:  m.stats.dropped.Load(),
		StatesApplied:    m.stats.applied.Load(),
		StatesRejected:   m.stats.rejected.Load(),
		BroadcastsQueued: m.stats.queued.Load(),
	}
}
