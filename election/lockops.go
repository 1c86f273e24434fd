package election

import (
	"fmt"
	"time"
)

// The pglock backend's vocabulary: the operations a LockNode asks the
// daemon to run against the coordination database (election/pglock does
// the SQL), and what comes back.

// LockOpKind names one operation on the coordination database.
type LockOpKind int

const (
	// OpTryLock takes the coordinator lock, or confirms it is still held.
	OpTryLock LockOpKind = iota + 1
	// OpRead reads the cluster's row.
	OpRead
	// OpRenew renews the primary lease of Token (this node).
	OpRenew
	// OpRelease gives up Token (this node, after fencing).
	OpRelease
	// OpRevoke stops every renewal of Token (coordinator).
	OpRevoke
	// OpApply applies Command (Promote: coordinator only, compare-and-set).
	OpApply
)

func (k LockOpKind) String() string {
	switch k {
	case OpTryLock:
		return "try-lock"
	case OpRead:
		return "read"
	case OpRenew:
		return "renew"
	case OpRelease:
		return "release"
	case OpRevoke:
		return "revoke"
	case OpApply:
		return "apply"
	}
	return fmt.Sprintf("LockOpKind(%d)", int(k))
}

// LockOp is one operation for the daemon to run. Run it and hand the
// outcome back with LockNode.OnResult, whatever happens (a timeout is an
// outcome too); the node keeps at most one operation of each kind in
// flight.
type LockOp struct {
	Kind    LockOpKind
	Seq     uint64
	Token   uint64
	Command *Command
	// Final (OpRelease after a clean stop) is recorded with the release.
	Final *Position
}

func (o LockOp) String() string {
	s := fmt.Sprintf("%s #%d", o.Kind, o.Seq)
	if o.Token != 0 {
		s += fmt.Sprintf(" token=%d", o.Token)
	}
	if o.Command != nil {
		s += " " + string(o.Command.Type)
	}
	return s
}

// LockRow is the cluster's row in the coordination database.
type LockRow struct {
	// Exists: the cluster has a row (it is bootstrapped).
	Exists bool
	// State is the replicated state.
	State ClusterState
	// Revoked is the highest token a coordinator revoked (0 after a
	// promotion).
	Revoked uint64
	// Released: the current token's primary released it.
	Released bool
	// Final: with a release after a clean stop, where the old primary's
	// last WAL record starts (only a replica beyond it is promoted).
	Final *Position
	// Remaining is lease_until − now() on the database's clock (negative:
	// the lease is over).
	Remaining time.Duration
	// Coordinator is the node whose session holds the coordinator lock
	// (0: none, or unknown).
	Coordinator uint64
}

// LockResult is the outcome of a LockOp.
type LockResult struct {
	Kind LockOpKind
	Seq  uint64
	// OK: the operation took effect (TryLock: the lock is held; Renew:
	// renewed; Apply, Revoke, Release: committed).
	OK bool
	// Row is the row after the operation, if the database answered.
	Row *LockRow
	// Conflict: a compare-and-set found the row changed (or, for a
	// promotion, the old lease not yet over).
	Conflict bool
	// NotHolder: the operation needed the lock and the session lacks it.
	NotHolder bool
	// Unreachable: the database did not answer (connection or timeout).
	Unreachable bool
	// Err describes a failure (nil when OK).
	Err error
}
