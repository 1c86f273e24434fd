package sim

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ramd/ramd/mesh"
)

// packet is one message in flight: an election message in its wire form
// (Encode/DecodeMessage run on every delivery) or a gossiped NodeState
// (the simulated mesh; memberlist's wire format is not exercised).
type packet struct {
	at       time.Duration
	seq      uint64
	from, to uint64
	data     []byte
	gossip   *mesh.NodeState
	// To and from the coordination database (pglock): a statement and
	// its answer. They travel over TCP: delayed and cut like the rest,
	// never dropped or duplicated by message faults.
	dbReq *dbRequest
	dbRep *dbReply
	// extra delay on top of the link's (dbjitter).
	extra time.Duration
}

// netFaults are the per-message misbehaviours currently in force.
type netFaults struct {
	drop, dup float64
	minDelay  time.Duration
	maxDelay  time.Duration
}

// network carries packets with a random delay (which also reorders them),
// drops and duplicates them, and cuts links one direction at a time. A cut
// is checked at delivery, so a partition also loses what was in flight.
type network struct {
	rng                       *rand.Rand
	faults                    netFaults
	cut                       [11][11]bool // [from][to], node ids 1..9, dbID
	ncut                      int
	queue                     []packet // sorted by (at, seq)
	seq                       uint64
	sent, dropped, duplicated uint64
}

func newNetwork(rng *rand.Rand) *network {
	return &network{rng: rng, faults: netFaults{minDelay: time.Millisecond, maxDelay: 10 * time.Millisecond}}
}

func (n *network) connected(from, to uint64) bool { return !n.cut[from][to] }

// anyCut reports whether any link is cut.
func (n *network) anyCut() bool { return n.ncut > 0 }

func (n *network) heal() { n.cut, n.ncut = [11][11]bool{}, 0 }

// setCut cuts (or restores) the link from→to.
func (n *network) setCut(from, to uint64, c bool) {
	if n.cut[from][to] != c {
		n.cut[from][to] = c
		if c {
			n.ncut++
		} else {
			n.ncut--
		}
	}
}

// partition cuts every link between different groups (both directions).
func (n *network) partition(groups [][]uint64) {
	n.heal()
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					n.setCut(a, b, true)
				}
			}
		}
	}
}

func (n *network) send(now time.Duration, p packet) {
	n.sent++
	if p.dbReq != nil || p.dbRep != nil {
		n.enqueue(now, p, 1)
		return
	}
	if n.rng.Float64() < n.faults.drop {
		n.dropped++
		return
	}
	copies := 1
	if n.rng.Float64() < n.faults.dup {
		copies, n.duplicated = 2, n.duplicated+1
	}
	n.enqueue(now, p, copies)
}

func (n *network) enqueue(now time.Duration, p packet, copies int) {
	for range copies {
		d := n.faults.minDelay + p.extra
		if span := n.faults.maxDelay - n.faults.minDelay; span > 0 {
			d += time.Duration(n.rng.Int64N(int64(span)))
		}
		q := p
		n.seq++
		q.at, q.seq = now+d, n.seq
		i, _ := slices.BinarySearchFunc(n.queue, q, func(a, b packet) int {
			if a.at != b.at {
				if a.at < b.at {
					return -1
				}
				return 1
			}
			if a.seq < b.seq {
				return -1
			}
			return 1
		})
		n.queue = slices.Insert(n.queue, i, q)
	}
}

// due removes and returns the packets due by now for which deliverable
// says yes; others due by now are dropped unless hold says to keep them
// (a paused receiver keeps its socket buffer).
func (n *network) due(now time.Duration, hold func(to uint64) bool) []packet {
	var out, kept []packet
	i := 0
	for ; i < len(n.queue) && n.queue[i].at <= now; i++ {
		p := n.queue[i]
		switch {
		case !n.connected(p.from, p.to):
			n.dropped++
		case hold(p.to):
			kept = append(kept, p)
		default:
			out = append(out, p)
		}
	}
	if len(kept) == 0 {
		n.queue = n.queue[i:]
	} else {
		n.queue = append(kept, n.queue[i:]...)
	}
	return out
}
