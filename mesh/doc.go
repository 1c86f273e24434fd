// Package mesh is how ramd daemons find each other and share their state
// without an external store.
//
// Membership and failure detection come from SWIM gossip
// (github.com/hashicorp/memberlist). On top of it every daemon publishes a
// NodeState (role, LSN, lag, health, ...) that reaches the others in two
// ways:
//
//   - broadcasts piggybacked on gossip packets, one named broadcast per
//     node so a newer state replaces a queued older one, re-queued every
//     RefreshInterval to heal lost packets and keep LastSeen fresh;
//   - push/pull anti-entropy (LocalState/MergeRemoteState), which carries
//     every known state so a joining node learns the whole cluster at once.
//
// Node metadata (memberlist's NodeMeta) holds only node_id and api_url:
// every metadata change bumps the memberlist incarnation and floods alive
// messages, so fast-changing fields never go there.
//
// # Layout
//
// The merge rules live in view (view.go), a plain data structure without
// goroutines or clocks: it decides which state wins, what liveness a member
// has and what a snapshot looks like, and is unit-tested directly. Mesh
// (mesh.go) is the edge: it owns the memberlist instance, the locks, the
// goroutines (rejoin.go, the refresh loop) and translates memberlist
// callbacks (delegate.go, events.go) into view calls.
//
// # Liveness
//
// memberlist v0.7.0 does not expose a member's SWIM state: Node.State is
// never updated (hashicorp/memberlist#266) and NotifyLeave fires alike for
// a failure and for a graceful leave. The mesh therefore derives:
//
//   - Alive from NotifyJoin/NotifyUpdate;
//   - Suspect when this node's own probe of the member failed (memberlist
//     reports it only in its log line "Suspect X has failed, no acks
//     received", which logbridge.go recognises), cleared by the next
//     direct ack (PingDelegate) or an alive event. Suspicion learnt only
//     from other nodes' gossip is not visible here;
//   - Dead from NotifyLeave, or Left when the member announced a graceful
//     leave first (Mesh.Leave sends a leave notice over TCP to every member
//     before memberlist's own leave).
//
// # Wire format
//
// Every message of the mesh is [kind:1][version:1][payload]. Kinds below
// FirstHandlerKind are the mesh's own (state, snapshot, leave notice); the
// rest are reserved for RegisterHandler, meant for the election issue
// (raft messages over memberlist's reliable channel).
//
// # Partitions
//
// memberlist never merges two sides of a partition by itself once the
// other side is reaped, so the mesh re-joins its seeds periodically
// (RejoinInterval): every seed that is not currently a live member is
// contacted again.
package mesh
