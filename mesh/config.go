package mesh

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Defaults for the timing fields of Config. The failure-detection values
// were measured on loopback (see the package tests): a stopped node is
// reported dead by every peer in well under 3 s, which is the product's
// promise, while ProbeTimeout stays far above loopback and LAN round trips
// plus GC and CPU-steal jitter so that healthy nodes are not suspected on a
// busy two-core machine.
const (
	DefaultProbeInterval = 250 * time.Millisecond
	DefaultProbeTimeout  = 200 * time.Millisecond
	DefaultSuspicionMult = 4
	// DefaultSuspicionMaxTimeoutMult caps Lifeguard's stretching of the
	// suspicion timeout while peers have not confirmed it. memberlist's 6
	// lets a suspicion last 6 s in clusters of 4 or more nodes (with 3 no
	// confirmations are expected and the timeout is fixed), which breaks
	// the 3 s promise whenever confirmations are slow; 2 bounds it at 2 s
	// and still gives a falsely suspected node that long to refute.
	DefaultSuspicionMaxTimeoutMult = 2
	DefaultGossipInterval          = 100 * time.Millisecond
	DefaultGossipNodes             = 3
	DefaultPushPullInterval        = 5 * time.Second
	DefaultRejoinInterval          = 5 * time.Second
	DefaultRefreshInterval         = 1 * time.Second
	// DefaultDeadNodeReclaimTime lets a restarted daemon that comes back
	// under the same name on another address be re-admitted quickly;
	// memberlist's default (0) refuses the new address forever.
	DefaultDeadNodeReclaimTime = 3 * time.Second
	// DefaultTCPTimeout bounds push/pull and joins. memberlist's 10 s is
	// meant for WANs and would stall the rejoin loop on every unreachable
	// seed.
	DefaultTCPTimeout = 3 * time.Second
)

// Limits on names, so every state fits one UDP broadcast comfortably.
const (
	maxNodeNameLen    = 128
	maxClusterNameLen = memberlist.LabelMaxSize // memberlist's label limit (255)
)

// ErrInvalidConfig is wrapped by every validation error of New.
var ErrInvalidConfig = errors.New("mesh: invalid config")

// Config configures one Mesh. Zero durations and counts take the Default*
// values above.
type Config struct {
	// NodeName is the node's unique memberlist name; it is also the Name
	// of every NodeState this node publishes.
	NodeName string
	// ClusterName becomes memberlist's Label: nodes of two clusters never
	// merge even if one is seeded with the other's address.
	ClusterName string
	// NodeID and APIURL are advertised in node metadata from the start,
	// so peers can show them before the first state arrives. SetLocal
	// updates them when the state's values differ.
	NodeID int
	APIURL string

	BindAddr      string // IP to bind; "" = 0.0.0.0
	BindPort      int    // 0 = pick a free port (tests)
	AdvertiseAddr string // "" = memberlist default (the bind or a private address)
	AdvertisePort int    // 0 = the bound port
	// EncryptKey is the AES key (16, 24 or 32 bytes) for gossip; nil means
	// plaintext, which is logged as a warning on a non-loopback bind.
	EncryptKey []byte
	// KeyringFile keeps the keyring across restarts (see keyring.go):
	// when it exists its keys are used instead of EncryptKey, and every
	// rotation rewrites it (mode 0600). "" keeps the keyring in memory.
	KeyringFile string
	// Seeds are host:port addresses joined at Start and, while they are
	// not live members, every RejoinInterval. Our own address may be
	// listed (all nodes usually share one list); it is skipped.
	Seeds []string

	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	SuspicionMult int
	// SuspicionMaxTimeoutMult: see DefaultSuspicionMaxTimeoutMult.
	SuspicionMaxTimeoutMult int
	GossipInterval          time.Duration
	GossipNodes             int
	PushPullInterval        time.Duration
	RejoinInterval          time.Duration
	// RefreshInterval re-queues the local state broadcast even when
	// nothing changed, to heal lost UDP packets and keep LastSeen fresh.
	RefreshInterval     time.Duration
	DeadNodeReclaimTime time.Duration
	TCPTimeout          time.Duration

	// Logger should already carry component=mesh; nil means slog.Default
	// with that attribute added.
	Logger *slog.Logger
	// Now is the clock of the view (StartedAt, ProducedAt, LastSeen);
	// nil means time.Now.
	Now func() time.Time
}

// withDefaults returns c with zero values replaced by defaults. It does
// not validate.
func (c Config) withDefaults() Config {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.ProbeInterval, DefaultProbeInterval)
	setDur(&c.ProbeTimeout, DefaultProbeTimeout)
	setDur(&c.GossipInterval, DefaultGossipInterval)
	setDur(&c.PushPullInterval, DefaultPushPullInterval)
	setDur(&c.RejoinInterval, DefaultRejoinInterval)
	setDur(&c.RefreshInterval, DefaultRefreshInterval)
	setDur(&c.DeadNodeReclaimTime, DefaultDeadNodeReclaimTime)
	setDur(&c.TCPTimeout, DefaultTCPTimeout)
	if c.SuspicionMult == 0 {
		c.SuspicionMult = DefaultSuspicionMult
	}
	if c.SuspicionMaxTimeoutMult == 0 {
		c.SuspicionMaxTimeoutMult = DefaultSuspicionMaxTimeoutMult
	}
	if c.GossipNodes == 0 {
		c.GossipNodes = DefaultGossipNodes
	}
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	if c.Logger == nil {
		c.Logger = slog.Default().With("component", "mesh")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate reports every problem at once so an operator can fix the
// configuration in one go. Call it on a config with defaults applied.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case c.NodeName == "":
		bad("NodeName is required")
	case len(c.NodeName) > maxNodeNameLen:
		bad("NodeName is longer than %d bytes", maxNodeNameLen)
	}
	switch {
	case c.ClusterName == "":
		bad("ClusterName is required")
	case len(c.ClusterName) > maxClusterNameLen:
		bad("ClusterName is longer than %d bytes", maxClusterNameLen)
	}
	if c.NodeID < 0 {
		bad("NodeID %d is negative", c.NodeID)
	}
	if net.ParseIP(c.BindAddr) == nil {
		bad("BindAddr %q is not an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		bad("AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		bad("BindPort %d is out of range 0-65535", c.BindPort)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("AdvertisePort %d is out of range 0-65535", c.AdvertisePort)
	}
	if c.EncryptKey != nil {
		switch len(c.EncryptKey) {
		case 16, 24, 32:
		default:
			bad("EncryptKey must be 16, 24 or 32 bytes, got %d", len(c.EncryptKey))
		}
	}
	for _, s := range c.Seeds {
		if _, _, err := splitSeed(s); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval},
		{"PushPullInterval", c.PushPullInterval},
		{"RejoinInterval", c.RejoinInterval},
		{"RefreshInterval", c.RefreshInterval},
		{"DeadNodeReclaimTime", c.DeadNodeReclaimTime},
		{"TCPTimeout", c.TCPTimeout},
	} {
		if d.v < 0 {
			bad("%s %v is negative", d.name, d.v)
		}
	}
	// memberlist waits ProbeTimeout for a direct ack and spends the rest
	// of the interval on indirect probes; without that rest a single lost
	// packet makes a healthy node suspect.
	if c.ProbeTimeout >= c.ProbeInterval {
		bad("ProbeTimeout %v must be shorter than ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 0 {
		bad("SuspicionMult %d is negative", c.SuspicionMult)
	}
	if c.SuspicionMaxTimeoutMult < 0 {
		bad("SuspicionMaxTimeoutMult %d is negative", c.SuspicionMaxTimeoutMult)
	}
	if c.GossipNodes < 0 {
		bad("GossipNodes %d is negative", c.GossipNodes)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// splitSeed parses a host:port seed.
func splitSeed(seed string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(seed)
	if err != nil {
		return "", 0, fmt.Errorf("seed %q: %w", seed, err)
	}
	if h == "" {
		return "", 0, fmt.Errorf("seed %q: missing host", seed)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("seed %q: port must be 1-65535", seed)
	}
	return h, n, nil
}

// memberlistConfig builds memberlist's configuration: LAN defaults, then
// our timings, label, key and delegates. logOut receives memberlist's log
// lines (see logbridge.go).
func (c Config) memberlistConfig(m *Mesh, logOut io.Writer) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.NodeName
	mc.Label = c.ClusterName
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if c.AdvertiseAddr != "" && c.AdvertisePort == 0 {
		// memberlist would advertise port 0 with an explicit address and a
		// fixed bind port (with BindPort 0 it fills in the bound port).
		mc.AdvertisePort = c.BindPort
	}
	if m.keyring != nil {
		mc.Keyring = m.keyring
		// Refuse plaintext from anyone once we have a key, and never send
		// it: a node without the key must not be admitted.
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = c.SuspicionMaxTimeoutMult
	mc.GossipInterval = c.GossipInterval
	mc.GossipNodes = c.GossipNodes
	mc.PushPullInterval = c.PushPullInterval
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	mc.TCPTimeout = c.TCPTimeout
	// States are a few hundred bytes on a LAN: LZW costs more CPU on an
	// idle cluster than it saves in bandwidth.
	mc.EnableCompression = false

	d := &delegate{m: m}
	mc.Delegate = d
	ev := &events{m: m}
	mc.Events = ev
	mc.Ping = ev
	mc.Conflict = ev
	mc.LogOutput = nil
	mc.Logger = log.New(logOut, "", 0)
	return mc
}
