package mesh

import (
	"github.com/hashicorp/memberlist"
)

// delegate implements memberlist.Delegate: node metadata, user messages,
// broadcasts and push/pull state. memberlist calls it concurrently from
// its packet, stream and gossip goroutines; it must not block.
type delegate struct {
	m *Mesh
}

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta advertises node_id and api_url only (see nodeMeta).
func (d *delegate) NodeMeta(limit int) []byte {
	meta := d.m.localMeta()
	b, full := encodeMeta(meta, limit)
	if !full {
		d.m.log.Warn("api_url does not fit the node metadata; advertising node_id only",
			"api_url", meta.APIURL, "limit", limit)
	}
	return b
}

// NotifyMsg handles a broadcast or reliable message. buf is reused by
// memberlist after return, so anything kept is copied.
func (d *delegate) NotifyMsg(buf []byte) {
	d.m.handleMessage(buf)
}

// GetBroadcasts hands memberlist the queued states to piggyback.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.queue.GetBroadcasts(overhead, limit)
}

// LocalState sends every known state on push/pull, so a joining node
// learns the whole cluster in one exchange.
func (d *delegate) LocalState(join bool) []byte {
	return d.m.snapshotMessage()
}

// MergeRemoteState applies a peer's push/pull snapshot.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	d.m.handleSnapshot(buf)
}

// namedBroadcast is one queued message. Being a memberlist.NamedBroadcast,
// queuing it drops a queued message of the same name, so at most one state
// per node (the newest) waits in the queue.
type namedBroadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*namedBroadcast)(nil)

func (b *namedBroadcast) Name() string    { return b.name }
func (b *namedBroadcast) Message() []byte { return b.msg }
func (b *namedBroadcast) Finished()       {}

// Invalidates is not consulted for named broadcasts (the queue matches
// them by name) but is required by the interface.
func (b *namedBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*namedBroadcast)
	return ok && o.name == b.name
}

// Broadcast names: one slot per node for states and one for leave notices,
// so a state does not push a leave notice out of the queue.
func stateBroadcastName(node string) string { return "state/" + node }
func leaveBroadcastName(node string) string { return "leave/" + node }
