package election

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// MaxVoters caps the raft voter set. Beyond five, every write waits for
// more acknowledgements without tolerating a useful extra failure; further
// nodes join as learners and still follow the state.
const MaxVoters = 5

var (
	// ErrStaleToken: a Promote whose token is not the applied token + 1.
	ErrStaleToken = errors.New("election: stale fencing token")
	// ErrRejected wraps every other deterministic refusal at apply time.
	ErrRejected = errors.New("election: command rejected")
)

// ClusterState is the replicated decision: who is primary under which
// fencing token. Every replica applies the same committed commands in the
// same order with Apply, which is deterministic (no clock, no map
// iteration order), so all replicas hold identical states.
type ClusterState struct {
	// Bootstrapped: a Bootstrap command has been applied.
	Bootstrapped bool `json:"bootstrapped"`
	// Primary is the node id of the current primary (0: none yet).
	Primary uint64 `json:"primary"`
	// Token is the fencing token of the current primary. It grows by one
	// at every change of primary and is never reused; PostgreSQL-side
	// fences and leases are keyed by it.
	Token uint64 `json:"token"`
	// Voters is the sorted raft voter set, as last applied.
	Voters []uint64 `json:"voters"`
	// Learners are the other members (sorted).
	Learners []uint64 `json:"learners,omitempty"`
	// Maintenance turns automatic failover off.
	Maintenance bool `json:"maintenance"`
	// Sync is the synchronous replication setup the primary runs with
	// (synchronous_mode and its k). It is cluster-wide and dynamic, so it
	// is replicated: every coordinator applies the same rule at failover.
	// Zero: asynchronous.
	Sync SyncState `json:"sync,omitzero"`
	// Switchover is a pending planned switchover, if any.
	Switchover *SwitchoverCmd `json:"switchover,omitempty"`
	// Config holds the cluster-wide configuration overrides ("section.key"
	// → value as text), applied over every node's own file.
	Config map[string]string `json:"config,omitempty"`
	// Removed lists nodes removed from the group (remove-node), so that
	// they are not added back automatically (sorted).
	Removed []uint64 `json:"removed,omitempty"`
	// Detached lists the replicas detached from streaming (sorted).
	Detached []uint64 `json:"detached,omitempty"`
	// ManualFailover is a pending manual failover, if any.
	ManualFailover *FailoverCmd `json:"manual_failover,omitempty"`
	// History lists every change of primary, oldest first.
	History []FailoverRecord `json:"history,omitempty"`
}

// FailoverRecord is one change of primary.
type FailoverRecord struct {
	Token    uint64        `json:"token"`
	Old      uint64        `json:"old"`
	New      uint64        `json:"new"`
	Reason   string        `json:"reason"`
	Timeline uint32        `json:"timeline"`
	LSN      uint64        `json:"lsn"`
	At       time.Duration `json:"at"`
	// Time is the proposer's wall clock (Unix ms; 0: not given).
	Time int64 `json:"time,omitempty"`
}

// Clone returns a deep copy.
func (s ClusterState) Clone() ClusterState {
	c := s
	c.Voters = slices.Clone(s.Voters)
	c.Learners = slices.Clone(s.Learners)
	c.History = slices.Clone(s.History)
	c.Detached = slices.Clone(s.Detached)
	c.Removed = slices.Clone(s.Removed)
	c.Config = maps.Clone(s.Config)
	c.Sync.Members = slices.Clone(s.Sync.Members)
	if s.Switchover != nil {
		sw := *s.Switchover
		c.Switchover = &sw
	}
	if s.ManualFailover != nil {
		mf := *s.ManualFailover
		c.ManualFailover = &mf
	}
	return c
}

// IsVoter reports whether id is in the voter set.
func (s ClusterState) IsVoter(id uint64) bool {
	_, ok := slices.BinarySearch(s.Voters, id)
	return ok
}

// Quorum is the number of voters that forms a majority (0 without voters).
func (s ClusterState) Quorum() int {
	if len(s.Voters) == 0 {
		return 0
	}
	return len(s.Voters)/2 + 1
}

// Apply applies one committed command. On error the state is unchanged;
// the error is the same on every replica, so a rejected entry is simply a
// no-op everywhere (the proposer learns of it from the Event log).
func (s *ClusterState) Apply(c Command) error {
	if err := c.validate(); err != nil {
		return err
	}
	switch c.Type {
	case CmdBootstrap:
		b := c.Bootstrap
		if s.Bootstrapped {
			return fmt.Errorf("%w: already bootstrapped (primary %d, token %d)", ErrRejected, s.Primary, s.Token)
		}
		s.Bootstrapped = true
		s.Primary = b.Primary
		s.Token = 1
		if len(s.Voters) == 0 {
			s.Voters = sortedUnique(b.Voters)
		}
		if b.Sync != nil {
			s.Sync = b.Sync.normalized()
		}
		s.History = append(s.History, FailoverRecord{Token: 1, New: b.Primary, Reason: "bootstrap", At: b.At, Time: b.Time})
	case CmdPromote:
		p := c.Promote
		if !s.Bootstrapped {
			return fmt.Errorf("%w: promote before bootstrap", ErrRejected)
		}
		if p.Token != s.Token+1 {
			return fmt.Errorf("%w: promote carries token %d, applied token is %d", ErrStaleToken, p.Token, s.Token)
		}
		if p.Old != s.Primary {
			return fmt.Errorf("%w: promote names old primary %d, current is %d", ErrRejected, p.Old, s.Primary)
		}
		if p.New == s.Primary && !p.Reclaim {
			return fmt.Errorf("%w: node %d is already primary", ErrRejected, p.New)
		}
		if p.Reclaim && p.New != p.Old {
			return fmt.Errorf("%w: a reclaim names node %d, not the old primary %d", ErrRejected, p.New, p.Old)
		}
		s.Primary, s.Token = p.New, p.Token
		s.Detached = slices.DeleteFunc(s.Detached, func(id uint64) bool { return id == p.New })
		s.Switchover = nil
		s.ManualFailover = nil
		s.History = append(s.History, FailoverRecord{Token: p.Token, Old: p.Old, New: p.New, Reason: p.Reason, Timeline: p.Timeline, LSN: p.LSN, At: p.At, Time: p.Time})
	case CmdSetMaintenance:
		s.Maintenance = c.Maintenance.On
	case CmdSetSync:
		if t := c.Sync.Token; t != 0 && t != s.Token {
			return fmt.Errorf("%w: set-sync proposed under token %d, applied token is %d", ErrStaleToken, t, s.Token)
		}
		if c.Sync.Version != s.Sync.Version {
			return fmt.Errorf("%w: set-sync based on version %d, applied version is %d", ErrRejected, c.Sync.Version, s.Sync.Version)
		}
		v := s.Sync.Version
		s.Sync = c.Sync.normalized()
		s.Sync.Version = v + 1
	case CmdSetConfig:
		if s.Config == nil {
			s.Config = map[string]string{}
		}
		for k, v := range c.Config.Set {
			s.Config[k] = v
		}
		for _, k := range c.Config.Unset {
			delete(s.Config, k)
		}
		if len(s.Config) == 0 {
			s.Config = nil
		}
	case CmdSetDetached:
		d := c.Detached
		if d.On && d.Node == s.Primary {
			return fmt.Errorf("%w: node %d is the primary; only a replica can be detached", ErrRejected, d.Node)
		}
		s.Detached = slices.DeleteFunc(slices.Clone(s.Detached), func(id uint64) bool { return id == d.Node })
		if d.On {
			s.Detached = sortedUnique(append(s.Detached, d.Node))
		}
	case CmdFailover:
		f := c.Failover
		if f.Clear {
			s.ManualFailover = nil
			break
		}
		switch {
		case !s.Bootstrapped:
			return fmt.Errorf("%w: manual failover before bootstrap", ErrRejected)
		case f.Token != s.Token:
			return fmt.Errorf("%w: manual failover of token %d, applied token is %d", ErrStaleToken, f.Token, s.Token)
		case f.To == s.Primary:
			return fmt.Errorf("%w: node %d is already the primary", ErrRejected, f.To)
		}
		mf := *f
		s.ManualFailover = &mf
	case CmdSwitchover:
		if c.Switchover.Clear {
			s.Switchover = nil
			break
		}
		if c.Switchover.From != s.Primary {
			return fmt.Errorf("%w: switchover from %d but the primary is %d", ErrRejected, c.Switchover.From, s.Primary)
		}
		sw := *c.Switchover
		s.Switchover = &sw
	case CmdAddVoter:
		id := c.Voter.ID
		if s.IsVoter(id) {
			return nil
		}
		if len(s.Voters) >= MaxVoters {
			return fmt.Errorf("%w: voter set is full (%d)", ErrRejected, MaxVoters)
		}
		s.Learners = slices.DeleteFunc(s.Learners, func(x uint64) bool { return x == id })
		s.Voters = sortedUnique(append(s.Voters, id))
	case CmdRemoveVoter:
		id := c.Voter.ID
		if !s.IsVoter(id) {
			return nil
		}
		if len(s.Voters) == 1 {
			return fmt.Errorf("%w: cannot remove the last voter", ErrRejected)
		}
		s.Voters = slices.DeleteFunc(slices.Clone(s.Voters), func(x uint64) bool { return x == id })
	}
	return nil
}

// setMembership records the raft configuration after a ConfChange.
func (s *ClusterState) setMembership(voters, learners []uint64) {
	s.Voters = sortedUnique(voters)
	s.Learners = sortedUnique(learners)
}

// Snapshot encodes the state for a raft snapshot.
func (s ClusterState) Snapshot() ([]byte, error) {
	return json.Marshal(s)
}

// RestoreClusterState decodes a Snapshot.
func RestoreClusterState(data []byte) (ClusterState, error) {
	var s ClusterState
	if len(data) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return ClusterState{}, fmt.Errorf("election: restore cluster state: %w", err)
	}
	if !slices.IsSorted(s.Voters) || len(s.Voters) > MaxVoters {
		return ClusterState{}, fmt.Errorf("election: restore cluster state: invalid voter set %v", s.Voters)
	}
	return s, nil
}

func sortedUnique(ids []uint64) []uint64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
