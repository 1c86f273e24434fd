package election

import (
	"fmt"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Ready is the work a Node hands to the daemon. Handle it in this order:
//
//  1. Fence first: carry out every Fence and Demote action before anything
//     else (stop acknowledging writes). Stopping writes is always safe
//     and must not wait behind disk or network.
//  2. Persist HardState, Entries (replacing any persisted entries from the
//     first new index on), Snapshot and Revoked, durably (fsync) when
//     MustSync.
//  3. Send Messages.
//  4. Carry out the remaining Actions in order (Promote, Follow, ...).
//  5. Call Advance.
//
// Committed entries are applied inside Node (ClusterState is in memory and
// rebuilt from the log on restart); Applied and State report the outcome.
type Ready struct {
	HardState *pb.HardState
	Entries   []*pb.Entry
	Snapshot  *pb.Snapshot
	MustSync  bool
	// Revoked is the highest token this voter has revoked; persist it
	// when RevokedChanged (before sending Messages: a Revoked reply is a
	// promise that must survive a restart).
	Revoked        uint64
	RevokedChanged bool

	Messages []Message

	// Applied lists the commands applied since the last Ready.
	Applied []Applied
	// State is the applied ClusterState when it changed (else nil).
	State *ClusterState

	Actions []Action
	Events  []Event

	// Ops are operations on the coordination database (pglock backend
	// only): run each and report it with LockNode.OnResult. They come
	// after fencing and sending, with the other actions.
	Ops []LockOp
}

// Applied is one applied log entry.
type Applied struct {
	Index   uint64
	Command Command
	// Err is the deterministic rejection, if any.
	Err error
}

// ActionKind says what the daemon must do to its local PostgreSQL.
type ActionKind int

const (
	// ActFence: stop acknowledging writes now (lease expired or released).
	ActFence ActionKind = iota + 1
	// ActDemote: a higher token names another primary; stop writes and
	// step down (NewPrimary says whom to follow next).
	ActDemote
	// ActPromote: this node is primary under Token. The previous
	// primary's lease has certainly expired (the coordinator waited before
	// proposing), so promoting is safe; accept writes only while the
	// lease is held (see ActLeaseAcquired/ActFence).
	ActPromote
	// ActFollow: replicate from Primary (token Token); the daemon decides
	// whether to rewind or reclone.
	ActFollow
	// ActLeaseAcquired: the primary's lease is held; writes may be
	// acknowledged until the next ActFence.
	ActLeaseAcquired
	// ActLeaseLost is informational: the lease ended (a Fence
	// accompanies it on the primary).
	ActLeaseLost
	// ActStepDown: a planned switchover names this primary. Stop
	// PostgreSQL cleanly (the streaming replicas then hold every WAL
	// record), then call ReleaseAfterStop with the final position.
	ActStepDown
)

func (k ActionKind) String() string {
	switch k {
	case ActFence:
		return "fence"
	case ActDemote:
		return "demote"
	case ActPromote:
		return "promote"
	case ActFollow:
		return "follow"
	case ActLeaseAcquired:
		return "lease-acquired"
	case ActLeaseLost:
		return "lease-lost"
	case ActStepDown:
		return "step-down"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one instruction for the daemon.
type Action struct {
	Kind       ActionKind
	Token      uint64
	NewPrimary uint64 // Demote, Follow: whom to follow
	Reason     string
}

func (a Action) String() string {
	s := fmt.Sprintf("%s token=%d", a.Kind, a.Token)
	if a.NewPrimary != 0 {
		s += fmt.Sprintf(" primary=%d", a.NewPrimary)
	}
	if a.Reason != "" {
		s += " (" + a.Reason + ")"
	}
	return s
}

// Event records one state transition, with why, for logs and the status
// API: nothing the election does should be invisible.
type Event struct {
	At     time.Duration
	Node   uint64
	Kind   string
	Reason string
}

func (e Event) String() string { return fmt.Sprintf("%s: %s", e.Kind, e.Reason) }

// IsEmpty reports whether the Ready holds no work.
func (rd Ready) IsEmpty() bool {
	return rd.HardState == nil && len(rd.Entries) == 0 && rd.Snapshot == nil && !rd.RevokedChanged &&
		len(rd.Messages) == 0 && len(rd.Applied) == 0 && rd.State == nil && len(rd.Actions) == 0 && len(rd.Events) == 0 && len(rd.Ops) == 0
}
