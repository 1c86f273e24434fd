package election

import "time"

// Backend is what the daemon drives, whichever election backend the
// cluster uses: Node (quorum: raft among the daemons, leases granted by a
// majority of voters) or LockNode (pglock: the state, the coordinator
// lock and the lease live in a coordination PostgreSQL database). Both
// are pure state machines with the same loop: Tick and Step feed time and
// messages, Ready hands out fencing, messages, actions (and for LockNode
// database operations), Advance acknowledges. Everything above them —
// detector, choice of candidate, REST, ramctl, metrics — is shared.
type Backend interface {
	ID() uint64
	Now() time.Duration
	Tick()
	Step(Message) error
	HasReady() bool
	Ready() Ready
	Advance()

	State() ClusterState
	IsLeader() bool
	Leader() uint64
	LeaseValid() bool
	LeaseExpiry() time.Duration
	LastLeaseRequest(id uint64) (time.Duration, bool)
	FailoverPhase() string

	SetLocal(Local)
	SetWallNow(unixMS int64)
	Release(reason string)
	ReleaseAfterStop(reason string, final Position)
	ReportPrimaryFailed(reason string)
	ObservePrimary(token uint64, pos Position)

	Propose(Command) error
	ProposeBootstrap(primary uint64) error
	SetSync(SyncState) error
	SetMaintenance(on bool) error
	AddMember(id uint64) error
	RemoveMember(id uint64) error
	RequestSwitchover(to uint64, scheduledAt int64) error
	RequestFailover(to uint64, allowDataLoss bool) error
	SetDetached(id uint64, on bool) error
	SetConfig(set map[string]string, unset []string) error
	CancelFailover() error
	CancelSwitchover() error
}

var _ Backend = (*Node)(nil)
