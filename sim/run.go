package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ramd/ramd/detector"
	"github.com/ramd/ramd/election"
)

// Config configures one simulated run.
type Config struct {
	// Nodes: 3 to 9 (the first five are the founding voters); 2 to 9
	// with the pglock backend.
	Nodes int
	// Election is the backend: "quorum" (default: election.Node, raft
	// among the daemons) or "pglock" (election.LockNode with the
	// coordination database modelled in coorddb.go).
	Election string
	// DBBugs (pglock, test only) breaks the coordination database's
	// statements on purpose (see coorddb.go).
	DBBugs DBBugs
	Seed   uint64
	// Scenario: one of Scenarios; ignored when Schedule is set.
	Scenario string
	// Schedule, when set, replaces the scenario's generated schedule (a
	// replay of PrintTrace's output, or a testdata file).
	Schedule []Step
	// Sync: synchronous_mode=quorum; a write is acknowledged only once
	// NumSync standbys flushed it (and the lease gate allows it).
	Sync    bool
	NumSync int
	// Duration of simulated time. Default 70s.
	Duration time.Duration
	// FaultStart: when the scenario's faults begin. Default 6s.
	FaultStart time.Duration
	// Faults: what the random scenario injects (zero value: everything).
	Faults FaultKinds
	// BuggyStorage: a disk that loses the last vote and revocation on a
	// crash (see storage.go). Only for proving the simulator catches bugs.
	BuggyStorage bool
	// Drift bounds the simulated clocks' rate error. Default: the lease's
	// MaxDrift, i.e. within the documented bound.
	Drift float64
	// LeaseOverride (test only) is given to the Nodes verbatim, while the
	// simulated clocks still drift by Drift. NewNode validates a lease
	// config on its own terms, so the way to make a lease "shorter than
	// the drift margin allows" is to let the clocks drift more than the
	// config's MaxDrift admits: the same TTL is then too short for the
	// real drift.
	LeaseOverride *election.LeaseConfig
	// LivenessBound: how long a healed cluster with a majority up may go
	// without a writable primary. Default 30s.
	LivenessBound time.Duration

	// StuckRelease turns on the glue's releaseIfStuck: a primary that has
	// not held its lease for ReleaseAfter releases it. The daemon keeps a
	// rule like it as a safety net; it is off by default here so that the
	// runs prove election resumes an abandoned failover on its own.
	StuckRelease bool
}

func (c *Config) setDefaults() {
	if c.Nodes == 0 {
		c.Nodes = 5
	}
	if c.Scenario == "" {
		c.Scenario = "random"
	}
	if c.Election == "" {
		c.Election = "quorum"
	}
	if c.NumSync == 0 {
		c.NumSync = 1
	}
	if c.Duration == 0 {
		c.Duration = 70 * time.Second
	}
	if c.FaultStart == 0 {
		c.FaultStart = 6 * time.Second
	}
	if c.LivenessBound == 0 {
		c.LivenessBound = 30 * time.Second
	}
}

// leaseConfig is what the Nodes are given.
func (c Config) leaseConfig() election.LeaseConfig {
	if c.LeaseOverride != nil {
		return *c.LeaseOverride
	}
	return election.DefaultLeaseConfig()
}

// Result is the outcome of one run.
type Result struct {
	Config    Config
	Schedule  []Step
	Violation *Violation
	Trace     []Event
	Simulated time.Duration

	Failovers, FalseFailovers int
	// Detection: from a fault hitting the writable primary to the
	// coordinator starting a failover; Writable: from that fault to the
	// first node able to acknowledge writes under a newer token. One entry
	// per completed failover (simulated time).
	Detection, Writable []time.Duration
	Acked, LostWrites   int
	Messages            uint64
	// FirstWritable: when a node could first acknowledge writes under
	// each token (real time).
	FirstWritable map[uint64]time.Duration
	// Outages: the stretches of real time after the first writable
	// instant during which no node could acknowledge a write (To -1:
	// still going when the run ended).
	Outages []Outage
}

// Outage is a stretch without a writable primary.
type Outage struct{ From, To time.Duration }

// step is the simulation quantum: clocks, deliveries and PostgreSQL
// advance in steps of this much real time.
const step = 10 * time.Millisecond

// sim is one run's whole world. Nothing in it is shared between runs.
type sim struct {
	cfg      Config
	nodeCfg  election.Config
	detCfg   detector.Config
	glue     glueConfig
	founders []uint64
	ids      []uint64

	schedRng, pgRng, clientRng *rand.Rand
	now                        time.Duration
	nodes                      []*simNode
	net                        *network
	recID                      uint64
	pending                    map[uint64][]int // sync mode: WAL indexes awaiting flush acks
	nextWrite                  time.Duration

	steps       []Step
	lastCrash   uint64
	inv         invState
	violation   *Violation
	res         Result
	incident    *incident
	impairedAt  map[uint64]time.Duration
	writableAt  map[uint64]time.Duration
	gossipTicks int

	// db is the coordination database (pglock backend only).
	db           *coordDB
	everWritable bool
	// dbjitter: until when answers get up to dbJitterMax extra delay.
	dbJitterUntil, dbJitterMax time.Duration
	dbJitterRng                *rand.Rand
}

// pglock reports whether the run simulates the pglock backend.
func (s *sim) pglock() bool { return s.cfg.Election == "pglock" }

// incident is a fault hitting the writable primary, until a newer token
// is writable (a failover) or the same primary writes again.
type incident struct {
	start      time.Duration
	token      uint64
	primary    uint64
	detectedAt time.Duration
}

// Run simulates one cluster. It is deterministic given the seed except
// for raft's election jitter (see doc.go).
func Run(cfg Config) (res Result) {
	cfg.setDefaults()
	s, err := newSim(cfg)
	if err != nil {
		return Result{Config: cfg, Violation: &Violation{Invariant: "config", Detail: err.Error()}}
	}
	defer func() {
		if p := recover(); p != nil {
			s.fail(InvPanic, fmt.Sprint(p))
			res = s.result()
		}
	}()
	s.run()
	return s.result()
}

func newSim(cfg Config) (*sim, error) {
	if cfg.Election == "" {
		cfg.Election = "quorum"
	}
	switch {
	case cfg.Election != "quorum" && cfg.Election != "pglock":
		return nil, fmt.Errorf("sim: election backend %q, want quorum or pglock", cfg.Election)
	case cfg.Election == "pglock" && (cfg.Nodes < 2 || cfg.Nodes > 9):
		return nil, fmt.Errorf("sim: %d nodes, want 2 to 9 with the pglock backend", cfg.Nodes)
	case cfg.Election == "quorum" && (cfg.Nodes < 3 || cfg.Nodes > 9):
		return nil, fmt.Errorf("sim: %d nodes, want 3 to 9", cfg.Nodes)
	}
	lc := cfg.leaseConfig()
	if cfg.Drift == 0 {
		cfg.Drift = lc.MaxDrift
	}
	s := &sim{
		cfg:         cfg,
		nodeCfg:     election.Config{ElectionTick: 10, HeartbeatTick: 2, TickInterval: 100 * time.Millisecond, Lease: lc, Sync: syncConfig(cfg)},
		detCfg:      detector.DefaultConfig(),
		glue:        glueConfig{SuspectAfter: 800 * time.Millisecond, DeadAfter: 1500 * time.Millisecond, AdminEvery: time.Second, ReleaseAfter: 2 * lc.TTL, BootstrapPrimary: 1},
		schedRng:    newSchedRng(cfg),
		pgRng:       rand.New(rand.NewPCG(cfg.Seed, 2)),
		clientRng:   rand.New(rand.NewPCG(cfg.Seed, 3)),
		pending:     map[uint64][]int{},
		impairedAt:  map[uint64]time.Duration{},
		writableAt:  map[uint64]time.Duration{},
		gossipTicks: 2,
	}
	s.net = newNetwork(rand.New(rand.NewPCG(cfg.Seed, 4)))
	s.inv = invState{committed: map[uint64]uint64{}, acked: map[uint64]uint64{}, stableSince: -1}
	s.res.Config = cfg
	s.res.FirstWritable = map[uint64]time.Duration{}
	for i := 1; i <= cfg.Nodes; i++ {
		s.ids = append(s.ids, uint64(i))
		if i <= election.MaxVoters {
			s.founders = append(s.founders, uint64(i))
		}
	}
	if cfg.Schedule != nil {
		s.steps = slices.Clone(cfg.Schedule)
	} else {
		st, err := schedule(cfg, s.schedRng)
		if err != nil {
			return nil, err
		}
		s.steps = st
	}
	s.res.Schedule = slices.Clone(s.steps)
	// Clocks draw from their own stream, so a replayed schedule (which
	// does not consume schedRng) meets the same clocks.
	clockRng := rand.New(rand.NewPCG(cfg.Seed, 5))
	for _, id := range s.ids {
		rate := 1 + cfg.Drift*(2*clockRng.Float64()-1)
		n := &simNode{
			id:         id,
			clock:      newClock(time.Duration(clockRng.Int64N(int64(time.Hour))), rate),
			wallOffset: time.Duration(clockRng.Int64N(int64(200*time.Millisecond))) - 100*time.Millisecond,
			store:      storage{buggy: cfg.BuggyStorage, fsyncEvery: 10 * time.Second},
			pg:         pgModel{role: pgStandby, tl: 1, lag: time.Duration(s.pgRng.Int64N(int64(50 * time.Millisecond)))},
		}
		s.nodes = append(s.nodes, n)
	}
	if s.pglock() {
		// The database's clock drifts within the same bound (the lease
		// arithmetic assumes it); it draws from its own stream.
		dbRng := rand.New(rand.NewPCG(cfg.Seed, 6))
		c := newClock(time.Duration(dbRng.Int64N(int64(time.Hour))), 1+cfg.Drift*(2*dbRng.Float64()-1))
		s.db = newCoordDB(c, lc.TTL, sessionTimeout(lc), cfg.DBBugs)
		s.db.onCommit = s.onDBCommit
		s.dbJitterRng = rand.New(rand.NewPCG(cfg.Seed, 7))
	}
	for _, n := range s.nodes {
		if err := s.startDaemon(n, true); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newSchedRng is the random stream the schedule is drawn from.
func newSchedRng(cfg Config) *rand.Rand { return rand.New(rand.NewPCG(cfg.Seed, 1)) }

// syncConfig is the synchronous setup the cluster is bootstrapped with:
// quorum commit over every standby (the model acknowledges a write once
// NumSync standbys of the primary flushed it).
func syncConfig(cfg Config) *election.SyncState {
	if !cfg.Sync {
		return nil
	}
	return &election.SyncState{Mode: election.SyncQuorum, NumSync: cfg.NumSync}
}

func (s *sim) node(id uint64) *simNode {
	if id == 0 || int(id) > len(s.nodes) {
		return nil
	}
	return s.nodes[id-1]
}

func (s *sim) run() {
	for s.now = 0; s.now <= s.cfg.Duration && s.violation == nil; s.now += step {
		s.runSteps()
		for _, n := range s.nodes {
			if n.active(s.now) {
				s.catchUp(n)
			}
		}
		for _, p := range s.net.due(s.now, func(to uint64) bool { n := s.node(to); return n != nil && n.up && n.paused(s.now) }) {
			if p.to == dbID {
				s.dbReceive(p)
			} else if n := s.node(p.to); n.active(s.now) {
				s.deliver(n, p)
			}
		}
		s.dbStep()
		for _, n := range s.nodes {
			s.stepPG(n)
		}
		s.clientWrites()
		s.trackLeaders()
		s.trackIncidents()
		s.checkStep()
	}
	s.res.Simulated = min(s.now, s.cfg.Duration)
}

func (s *sim) result() Result {
	s.res.Violation = s.violation
	s.res.Messages = s.net.sent
	if s.inv.maxApplied > 1 {
		s.res.Failovers = int(s.inv.maxApplied - 1)
	}
	return s.res
}

// clientWrites: a client writes every 20ms to whichever node runs
// PostgreSQL as primary (several, if the cluster has split: it picks one).
// The write enters that WAL; it is acknowledged only through the gate.
func (s *sim) clientWrites() {
	if s.now < s.nextWrite {
		return
	}
	s.nextWrite = s.now + 20*time.Millisecond
	var prim []*simNode
	for _, n := range s.nodes {
		if n.pg.role == pgPrimary && !n.pg.busy() {
			prim = append(prim, n)
		}
	}
	if len(prim) > 0 {
		n := prim[s.clientRng.IntN(len(prim))]
		s.recID++
		n.pg.wal = append(n.pg.wal, record{id: s.recID, tl: n.pg.tl, tok: n.pg.writerToken, at: s.now})
		if s.cfg.Sync {
			s.pending[n.id] = append(s.pending[n.id], len(n.pg.wal)-1)
		} else if n.canAck(s.now) {
			s.onAck(n, s.recID)
		}
	}
	if !s.cfg.Sync {
		return
	}
	for _, n := range s.nodes {
		q := s.pending[n.id]
		if n.pg.role != pgPrimary {
			delete(s.pending, n.id) // in doubt forever
			continue
		}
		for len(q) > 0 && n.canAck(s.now) {
			i := q[0]
			if i >= len(n.pg.wal) {
				q = nil
				break
			}
			flushed := 0
			for _, o := range s.nodes {
				if o.id != n.id && o.pg.role == pgStandby && o.pg.upstream == n.id && len(o.pg.wal) > i && o.pg.wal[i].id == n.pg.wal[i].id {
					flushed++
				}
			}
			if flushed < s.cfg.NumSync {
				break
			}
			s.onAck(n, n.pg.wal[i].id)
			q = q[1:]
		}
		s.pending[n.id] = q
	}
}

// trackLeaders records raft leadership changes (who won which election):
// with raft's own jitter this is the part of a run a replay may not
// reproduce, so the trace must show it.
func (s *sim) trackLeaders() {
	if s.db != nil {
		return // pglock: the LockNode's coordinator events say it
	}
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		if l := n.node.Leader(); l != n.leader {
			n.leader = l
			if l == n.id {
				s.record(n.id, "leader", "became raft leader")
			}
		}
	}
}

// runSteps fires the scheduled faults that are due, in order; a step
// whose selector cannot be resolved yet holds the later ones back for up
// to 15s, then is skipped.
func (s *sim) runSteps() {
	for len(s.steps) > 0 && s.steps[0].At <= s.now {
		st := s.steps[0]
		ok := s.apply(st)
		if !ok && s.now-st.At < 15*time.Second {
			return
		}
		if !ok {
			s.record(0, "fault", "skipped (no target): "+st.String())
		}
		s.steps = s.steps[1:]
	}
}

// resolve turns a selector into a node (0: none right now).
func (s *sim) resolve(sel string) uint64 {
	switch sel {
	case "primary":
		for _, n := range s.nodes {
			if n.canAck(s.now) {
				return n.id
			}
		}
		return s.inv.committed[s.inv.maxApplied]
	case "leader":
		for _, n := range s.nodes {
			if n.up && n.node.IsLeader() {
				return n.id
			}
		}
		return 0
	case "coordinator":
		// pglock: the node whose session holds the lock on the server.
		if s.db != nil {
			return s.db.holderNode()
		}
		return s.resolve("leader")
	case "highest-lsn":
		var best *simNode
		for _, n := range s.nodes {
			if n.up && n.pg.role == pgStandby && (best == nil || n.pg.position().Compare(best.pg.position()) > 0) {
				best = n
			}
		}
		if best == nil {
			return 0
		}
		return best.id
	case "promoting":
		for _, n := range s.nodes {
			if n.up && n.pg.op == opPromote {
				return n.id
			}
		}
		return 0
	case "last-crashed":
		if n := s.node(s.lastCrash); n != nil && !n.up {
			return n.id
		}
		return 0
	}
	id, err := strconv.ParseUint(sel, 10, 64)
	if err != nil || s.node(id) == nil {
		return 0
	}
	return id
}

func (s *sim) apply(st Step) bool {
	target := func() *simNode { return s.node(s.resolve(st.Target)) }
	note := func(format string, args ...any) {
		s.record(0, "fault", st.String()+": "+fmt.Sprintf(format, args...))
	}
	switch st.Op {
	case "heal":
		s.net.heal()
		note("network healed")
	case "isolate":
		n := target()
		if n == nil {
			return false
		}
		var rest []uint64
		for _, id := range s.ids {
			if id != n.id {
				rest = append(rest, id)
			}
		}
		if s.pglock() {
			rest = append(rest, dbID) // cut off from everything, the database too
		}
		s.net.partition([][]uint64{{n.id}, rest})
		note("n%d cut off", n.id)
	case "halves":
		seed, _ := strconv.ParseUint(st.Arg, 10, 64)
		ids := slices.Clone(s.ids)
		r := rand.New(rand.NewPCG(seed, s.cfg.Seed))
		r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		a, b := ids[:len(ids)/2], ids[len(ids)/2:]
		slices.Sort(a)
		slices.Sort(b)
		if s.pglock() {
			// The database lands on one side (drawn after the split, so a
			// quorum run's halves are unchanged).
			if r.IntN(2) == 0 {
				a = append(a, dbID)
			} else {
				b = append(b, dbID)
			}
		}
		s.net.partition([][]uint64{a, b})
		note("%v | %v", a, b)
	case "ring":
		s.net.heal()
		nn := len(s.ids)
		d := (nn/2 + 1) / 2 // a node plus d on each side is a majority
		for i := range nn {
			for j := range nn {
				dist := min((i-j+nn)%nn, (j-i+nn)%nn)
				if dist > d {
					s.net.setCut(s.ids[i], s.ids[j], true)
				}
			}
		}
		note("each node reaches its %d nearest on each side", d)
	case "oneway":
		a, b := target(), s.node(s.resolve(st.Arg))
		if a == nil || b == nil || a == b {
			return a != nil && b != nil
		}
		s.net.setCut(a.id, b.id, true)
		note("link n%d→n%d cut", a.id, b.id)
	case "crash":
		n := target()
		if n == nil {
			return false
		}
		if n.up {
			s.crash(n)
			s.lastCrash = n.id
			note("n%d crashed", n.id)
		}
	case "restart":
		who := s.resolve(st.Target)
		for _, n := range s.nodes {
			if (st.Target == "all" || n.id == who) && !n.up {
				if err := s.startDaemon(n, false); err != nil {
					s.fail("config", err.Error())
					return true
				}
				note("n%d restarted", n.id)
			}
		}
		if st.Target != "all" && who == 0 {
			return false
		}
	case "pause":
		n := target()
		if n == nil {
			return false
		}
		if n.up {
			n.pausedTill = s.now + st.For
			note("n%d frozen until %v", n.id, n.pausedTill)
		}
	case "drift":
		n := target()
		if n == nil {
			return false
		}
		n.clock.setRate(s.now, st.Rate)
		note("n%d clock rate %v", n.id, st.Rate)
	case "dbcut", "dbrestart", "dbslow", "dbkill", "dbjitter":
		return s.applyDB(st, note)
	case "net":
		f := strings.Fields(st.Arg)
		drop, _ := strconv.ParseFloat(f[0], 64)
		dup, _ := strconv.ParseFloat(f[1], 64)
		s.net.faults = netFaults{drop: drop, dup: dup, minDelay: time.Millisecond, maxDelay: max(st.For, 2*time.Millisecond)}
		note("message faults set")
	}
	return true
}
