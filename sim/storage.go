package sim

import (
	"slices"
	"time"

	"github.com/ramd/ramd/election"
	pb "go.etcd.io/raft/v3/raftpb"
)

// storage models the daemon's durable state: what Ready asked it to
// persist (HardState, Entries, Snapshot, Revoked). The correct mode makes
// every write durable at the point ready.go says (before messages go out).
// The buggy mode is a deliberately broken disk for the simulator's own
// tests: HardState and Revoked writes sit in a page cache and reach the
// disk only every fsyncEvery, so a crash forgets the last vote and the
// last revocation although messages promising them were already sent.
type storage struct {
	buggy      bool
	fsyncEvery time.Duration
	nextSync   time.Duration

	durable election.Persisted
	cached  election.Persisted // buggy mode: the page cache
}

func (s *storage) persist(now time.Duration, rd election.Ready) {
	apply := func(p *election.Persisted, hs bool) {
		if hs && rd.HardState != nil {
			p.HardState = rd.HardState
		}
		if rd.Snapshot != nil {
			p.Snapshot, p.Entries = rd.Snapshot, nil
		}
		if len(rd.Entries) > 0 {
			first := rd.Entries[0].GetIndex()
			p.Entries = slices.DeleteFunc(p.Entries, func(e *pb.Entry) bool { return e.GetIndex() >= first })
			p.Entries = append(p.Entries, rd.Entries...)
		}
		if hs && rd.RevokedChanged {
			p.Revoked = rd.Revoked
		}
	}
	if !s.buggy {
		apply(&s.durable, true)
		return
	}
	// Entries reach the disk (so raft's log invariants hold and the bug
	// shows up in the lease, not as a raft panic); the vote and the
	// revocation are only cached.
	apply(&s.durable, false)
	apply(&s.cached, true)
	if now >= s.nextSync {
		s.nextSync = now + s.fsyncEvery
		s.durable.HardState, s.durable.Revoked = s.cached.HardState, s.cached.Revoked
	}
}

// crash drops the page cache.
func (s *storage) crash() {
	s.cached = election.Persisted{HardState: s.durable.HardState, Revoked: s.durable.Revoked}
}

// restart returns what the node finds on disk.
func (s *storage) restart() *election.Persisted {
	p := s.durable
	p.Entries = slices.Clone(p.Entries)
	if p.HardState == nil && p.Snapshot == nil && len(p.Entries) == 0 && p.Revoked == 0 {
		return &election.Persisted{}
	}
	return &p
}
