package sim

import (
	"fmt"
	"time"
)

// The coordination database in the run (pglock backend): its traffic,
// its faults, and what the invariants learn from it.

// dbReceive hands a statement to the server; an immediate answer goes
// back over the network.
func (s *sim) dbReceive(p packet) {
	if p.dbReq == nil {
		return
	}
	if rep, ok := s.db.receive(s.now, *p.dbReq); ok {
		s.dbSend(rep)
	}
}

func (s *sim) dbSend(rep dbReply) {
	p := packet{from: dbID, to: rep.key.node, dbRep: &rep}
	if s.now < s.dbJitterUntil {
		p.extra = time.Duration(s.dbJitterRng.Int64N(int64(s.dbJitterMax)))
	}
	s.net.send(s.now, p)
}

// dbStep advances the server (delayed statements, session timers) and
// the daemons' operation timeouts.
func (s *sim) dbStep() {
	if s.db == nil {
		return
	}
	alive := func(node, epoch uint64) bool {
		n := s.node(node)
		return n != nil && n.up && n.client != nil && n.client.epoch == epoch && s.net.connected(node, dbID) && s.net.connected(dbID, node)
	}
	wasUp, holder := s.db.up, s.db.holderNode()
	for _, rep := range s.db.step(s.now, alive) {
		s.dbSend(rep)
	}
	if !wasUp && s.db.up {
		s.record(0, "db", "coordination database is up again")
	}
	if h := s.db.holderNode(); h != holder && h == 0 {
		s.record(0, "db", fmt.Sprintf("the server freed n%d's coordinator lock (its session ended)", holder))
	}
	for _, n := range s.nodes {
		if n.lock != nil && n.active(s.now) {
			s.catchUp(n)
			s.lockTimeouts(n)
		}
	}
}

// onDBCommit: the coordination database committed token tok naming who
// (Bootstrap or Promote). This is the pglock backend's committed
// decision: (2) one token, one node; (4) at the instant a newer token
// commits, no node may still hold a valid lease for an older one.
func (s *sim) onDBCommit(tok, who uint64) {
	if prev, ok := s.inv.committed[tok]; ok && prev != who {
		s.fail(InvTokenOrder, fmt.Sprintf("the coordination database committed token %d for node %d, earlier for node %d", tok, who, prev))
	}
	s.inv.committed[tok] = who
	s.record(0, "db", fmt.Sprintf("committed token %d naming n%d", tok, who))
	for _, o := range s.nodes {
		if o.leaseToken != 0 && o.leaseToken < tok && o.leaseValidAt(s.now) {
			s.fail(InvStaleLease, fmt.Sprintf("the coordination database committed token %d while n%d still holds its lease for token %d until %v (its clock reads %v)",
				tok, o.id, o.leaseToken, o.node.LeaseExpiry(), o.clock.at(s.now)))
		}
	}
}

// applyDB carries out a fault on the coordination database.
func (s *sim) applyDB(st Step, note func(string, ...any)) bool {
	if s.db == nil {
		note("ignored: no coordination database (quorum backend)")
		return true
	}
	switch st.Op {
	case "dbcut":
		var targets []uint64
		if st.Target == "all" {
			targets = s.ids
		} else if id := s.resolve(st.Target); id != 0 {
			targets = []uint64{id}
		} else {
			return false
		}
		for _, id := range targets {
			if st.Arg == "both" || st.Arg == "to" {
				s.net.setCut(id, dbID, true)
			}
			if st.Arg == "both" || st.Arg == "from" {
				s.net.setCut(dbID, id, true)
			}
		}
		note("database cut from %v (%s)", targets, st.Arg)
	case "dbrestart":
		s.db.restart(s.now, st.For)
		note("coordination database restarted: sessions and lock gone, down until %v", s.now+st.For)
	case "dbslow":
		d, _ := time.ParseDuration(st.Arg)
		s.db.slowUntil, s.db.slowDelay = s.now+st.For, d
		note("coordination database slow until %v: every statement waits %v", s.now+st.For, d)
	case "dbjitter":
		d, _ := time.ParseDuration(st.Arg)
		s.dbJitterUntil, s.dbJitterMax = s.now+st.For, max(d, time.Millisecond)
		note("answers of the coordination database delayed by up to %v each until %v (they reorder across connections)", d, s.now+st.For)
	case "dbkill":
		id := s.resolve(st.Target)
		if id == 0 {
			return false
		}
		killed := 0
		for sid, ss := range s.db.sessions {
			if ss.key.node == id && ss.lockConn() {
				s.db.terminate(sid)
				killed++
			}
		}
		note("pg_terminate_backend on n%d's lock session (%d ended)", id, killed)
	}
	return true
}
