package mesh

import (
	"errors"
	"fmt"
	"math"
	"time"

	ramdmesh "github.com/ramd/ramd/mesh"
)

// Timings are the memberlist settings of every simulated node.
type Timings struct {
	ProbeInterval           time.Duration `json:"probe_interval"`
	ProbeTimeout            time.Duration `json:"probe_timeout"`
	SuspicionMult           int           `json:"suspicion_mult"`
	SuspicionMaxTimeoutMult int           `json:"suspicion_max_timeout_mult"`
	GossipInterval          time.Duration `json:"gossip_interval"`
	GossipNodes             int           `json:"gossip_nodes"`
	PushPullInterval        time.Duration `json:"push_pull_interval"`
	RejoinInterval          time.Duration `json:"rejoin_interval"`
	TCPTimeout              time.Duration `json:"tcp_timeout"`
	DeadNodeReclaimTime     time.Duration `json:"dead_node_reclaim_time"`
	// RetransmitMult is memberlist's retransmit multiplier: every node
	// sends each membership message it learns (alive, suspect, dead)
	// RetransmitMult*ceil(log10(n+1)) times. The daemon uses memberlist's 4.
	RetransmitMult int `json:"retransmit_mult"`
	// StateRetransmitMult is the same for the state broadcasts (the
	// daemon's SetLocal queue, which the daemon also gives 4).
	StateRetransmitMult int `json:"state_retransmit_mult"`
	// UDPBufferSize is memberlist's largest packet (1,400 bytes, for a
	// 1,500-byte MTU, in the daemon).
	UDPBufferSize int `json:"udp_buffer_size"`
	// Preset names the settings: PresetDaemon or PresetLarge.
	Preset string `json:"preset"`
	// Scale is the factor applied to the daemon's probe and gossip
	// intervals (1 up to 100 nodes).
	Scale float64 `json:"scale"`
}

// TimingsFor returns the settings for a cluster of n nodes. They start
// from the daemon's own defaults (package mesh), so the figures describe
// the mesh as ramd configures it, and change only what one process with
// n memberlists on two cores needs:
//
//   - ProbeInterval, ProbeTimeout and GossipInterval are multiplied by
//     Scale = max(1, 2*log10(n) - 2): 1 up to 10 nodes, 2 at 100, 4 at
//     1,000 (probe 1 s, timeout 800 ms, gossip 400 ms). All n nodes share
//     one process, so an ack waits for the whole process's backlog, and
//     on this shared two-core machine that backlog grows with n: with the
//     daemon's 200 ms timeout, 100 nodes already suspected healthy peers
//     while the joins were gossiped, and 300 nodes at 296 ms fell into a
//     collapse (false suspicions make refutations, whose gossip delays
//     more acks); at 1 s / 800 ms the same 300 nodes had no false
//     suspicion. A real cluster runs one daemon per machine and does not
//     need this. The timeout/interval ratio stays the daemon's (0.8),
//     and growing with log(n) follows memberlist's own scaling of the
//     suspicion timeout and of retransmits.
//   - SuspicionMult, SuspicionMaxTimeoutMult, GossipNodes, TCPTimeout and
//     DeadNodeReclaimTime are the daemon's, unscaled: memberlist already
//     multiplies the suspicion timeout by log10(n).
//   - PushPullInterval is the daemon's (5 s); memberlist itself stretches
//     it by log2(n/32)+1 above 32 nodes (30 s at 1,000). The daemon sends
//     its whole view in push/pull; the simulated nodes send none
//     (LocalState is empty), since only membership is measured here.
//   - RejoinInterval is the daemon's (5 s): as in the daemon, every node
//     re-joins the seeds it does not see alive, which is what re-merges a
//     healed partition once the dead are reaped.
//
// That is PresetDaemon, used below LargeFrom (500) nodes. From there on
// TimingsFor returns PresetLarge, which also changes memberlist's
// RetransmitMult (largeMult) and TCPTimeout; see PresetTimings.
func TimingsFor(n int) Timings {
	t, _ := PresetTimings(PresetAuto, n) // PresetAuto is always known
	return t
}

// The presets PresetTimings knows.
const (
	// PresetAuto is PresetDaemon below LargeFrom nodes, PresetLarge from
	// there on.
	PresetAuto = "auto"
	// PresetDaemon is TimingsFor's description above: the daemon's
	// settings, probe and gossip intervals scaled.
	PresetDaemon = "daemon"
	// PresetLarge is PresetDaemon with the changes a 1,000-node mesh in
	// one process on two shared cores needs: memberlist's RetransmitMult
	// (largeMult) and the stream timeout scaled like the probe timeout.
	PresetLarge = "large"
)

// LargeFrom is the cluster size from which PresetAuto means PresetLarge.
// 300 nodes ran with the daemon's settings (docs/benchmarks.md); 1,000
// did not.
const LargeFrom = 500

// largeMult is memberlist's RetransmitMult in PresetLarge. Forming n
// nodes makes every node learn every other one once and re-send each
// alive message RetransmitMult·ceil(log10(n+1)) times: n² of those
// messages times 16 at 1,000 nodes with the daemon's 4, and memberlist
// drains that backlog at a fixed rate (GossipNodes packets of at most
// 1,400 bytes per GossipInterval, plus what rides on pings and acks), so
// formation alone took minutes. The state broadcasts keep the daemon's
// multiplier (StateRetransmitMult), so the dissemination figure is the
// daemon's.
const largeMult = 2

// largeWaves is how many equal-cost waves the large preset forms the
// mesh in (Config.Waves), each ended by an anti-entropy round
// (Config.Sync). Fewer, larger waves saturated the two cores (and a
// saturated process delays acks into false suspicions); more waves
// spend their time waiting on gossip.
const largeWaves = 6

// PresetTimings returns the settings of a preset for n nodes.
func PresetTimings(preset string, n int) (Timings, error) {
	switch preset {
	case PresetAuto:
		if n >= LargeFrom {
			preset = PresetLarge
		} else {
			preset = PresetDaemon
		}
	case PresetDaemon, PresetLarge:
	default:
		return Timings{}, fmt.Errorf("unknown preset %q (want %s, %s or %s)", preset, PresetAuto, PresetDaemon, PresetLarge)
	}
	s := max(1, 2*math.Log10(float64(n))-2)
	scale := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * s).Round(time.Millisecond)
	}
	t := Timings{
		ProbeInterval:           scale(ramdmesh.DefaultProbeInterval),
		ProbeTimeout:            scale(ramdmesh.DefaultProbeTimeout),
		SuspicionMult:           ramdmesh.DefaultSuspicionMult,
		SuspicionMaxTimeoutMult: ramdmesh.DefaultSuspicionMaxTimeoutMult,
		GossipInterval:          scale(ramdmesh.DefaultGossipInterval),
		GossipNodes:             ramdmesh.DefaultGossipNodes,
		PushPullInterval:        ramdmesh.DefaultPushPullInterval,
		RejoinInterval:          ramdmesh.DefaultRejoinInterval,
		TCPTimeout:              ramdmesh.DefaultTCPTimeout,
		DeadNodeReclaimTime:     ramdmesh.DefaultDeadNodeReclaimTime,
		RetransmitMult:          4,
		StateRetransmitMult:     4,
		UDPBufferSize:           1400,
		Scale:                   s,
		Preset:                  preset,
	}
	if preset == PresetLarge {
		t.RetransmitMult = largeMult
		// Joins and push/pulls are streams whose other end is one of the
		// n memberlists sharing the process: like an ack, the answer waits
		// for the process's backlog, so the stream timeout scales with
		// the probe timeout. With the daemon's 3 s, joins into a
		// 1,000-node mesh on a loaded machine timed out and were retried
		// until formation failed.
		t.TCPTimeout = scale(ramdmesh.DefaultTCPTimeout)
	}
	return t, nil
}

// WithScale returns t with the daemon's probe interval, probe timeout
// and gossip interval (and, in the large preset, the stream timeout)
// scaled by s instead of t.Scale.
func (t Timings) WithScale(s float64) Timings {
	scale := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * s).Round(time.Millisecond)
	}
	t.Scale = s
	t.ProbeInterval = scale(ramdmesh.DefaultProbeInterval)
	t.ProbeTimeout = scale(ramdmesh.DefaultProbeTimeout)
	t.GossipInterval = scale(ramdmesh.DefaultGossipInterval)
	if t.Preset == PresetLarge {
		t.TCPTimeout = scale(ramdmesh.DefaultTCPTimeout)
	}
	return t
}

// Validate rejects settings memberlist would misbehave with or that
// contradict each other.
func (t Timings) Validate() error {
	switch {
	case t.ProbeInterval <= 0 || t.ProbeTimeout <= 0 || t.GossipInterval <= 0 ||
		t.PushPullInterval <= 0 || t.RejoinInterval <= 0 || t.TCPTimeout <= 0:
		return errors.New("timings: intervals and timeouts must be positive")
	case t.ProbeTimeout >= t.ProbeInterval:
		// memberlist waits ProbeTimeout for an ack inside each probe
		// interval, then probes indirectly before the next one.
		return fmt.Errorf("timings: probe timeout %v must be below the probe interval %v", t.ProbeTimeout, t.ProbeInterval)
	case t.SuspicionMult < 1 || t.SuspicionMaxTimeoutMult < 1:
		return errors.New("timings: suspicion multipliers must be at least 1")
	case t.GossipNodes < 1:
		return fmt.Errorf("timings: gossip nodes must be at least 1, got %d", t.GossipNodes)
	case t.RetransmitMult < 1 || t.RetransmitMult > 10 || t.StateRetransmitMult < 1 || t.StateRetransmitMult > 10:
		return fmt.Errorf("timings: retransmit multipliers must be between 1 and 10, got %d and %d", t.RetransmitMult, t.StateRetransmitMult)
	case t.DeadNodeReclaimTime < 0:
		return errors.New("timings: dead node reclaim time must not be negative")
	}
	return nil
}

// SuspicionTimeout is memberlist's suspicion timeout for n nodes without
// confirmations (the upper bound) and with all of them (the lower one):
// SuspicionMult × max(1, log10(n)) × ProbeInterval, times
// SuspicionMaxTimeoutMult for the upper bound.
func (t Timings) SuspicionTimeout(n int) (lower, upper time.Duration) {
	f := math.Max(1, math.Log10(float64(n)))
	lower = time.Duration(float64(t.SuspicionMult) * f * float64(t.ProbeInterval))
	return lower, lower * time.Duration(t.SuspicionMaxTimeoutMult)
}
