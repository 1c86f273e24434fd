package mesh

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Config{NodeName: "n1", ClusterName: "c", BindAddr: "127.0.0.1"}.withDefaults()
	if err := good.validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if good.ProbeInterval != DefaultProbeInterval || good.SuspicionMult != DefaultSuspicionMult ||
		good.RejoinInterval != DefaultRejoinInterval || good.Now == nil || good.Logger == nil {
		t.Fatalf("defaults not applied: %+v", good)
	}
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.NodeName = "" }, "NodeName is required"},
		{"long name", func(c *Config) { c.NodeName = strings.Repeat("x", 200) }, "NodeName is longer"},
		{"no cluster", func(c *Config) { c.ClusterName = "" }, "ClusterName is required"},
		{"long cluster", func(c *Config) { c.ClusterName = strings.Repeat("x", 256) }, "ClusterName is longer"},
		{"bad bind", func(c *Config) { c.BindAddr = "localhost" }, `BindAddr "localhost" is not an IP`},
		{"bad advertise", func(c *Config) { c.AdvertiseAddr = "x" }, "AdvertiseAddr"},
		{"bad port", func(c *Config) { c.BindPort = 70000 }, "BindPort 70000"},
		{"bad key", func(c *Config) { c.EncryptKey = []byte("short") }, "EncryptKey must be 16, 24 or 32 bytes, got 5"},
		{"bad seed", func(c *Config) { c.Seeds = []string{"nohost"} }, `seed "nohost"`},
		{"seed port", func(c *Config) { c.Seeds = []string{"h:0"} }, "port must be 1-65535"},
		{"timeout >= interval", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, "ProbeTimeout"},
		{"negative", func(c *Config) { c.RejoinInterval = -time.Second }, "RejoinInterval -1s is negative"},
		{"negative id", func(c *Config) { c.NodeID = -1 }, "NodeID -1"},
	} {
		c := good
		tc.mut(&c)
		err := c.validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) ||
			!strings.HasPrefix(err.Error(), "mesh: ") {
			t.Errorf("%s: got %v, want ErrInvalidConfig mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(Config{ClusterName: "c"})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err %v", err)
	}
}

func TestMemberlistConfig(t *testing.T) {
	c := Config{
		NodeName: "n1", ClusterName: "prod", BindAddr: "127.0.0.1", BindPort: 7946,
		AdvertiseAddr: "10.0.0.1", EncryptKey: make([]byte, 16),
	}.withDefaults()
	m := &Mesh{cfg: c, log: slog.New(slog.DiscardHandler)}
	kr, err := m.newKeyring()
	if err != nil {
		t.Fatal(err)
	}
	m.keyring = kr
	mc := c.memberlistConfig(m, io.Discard)
	if mc.Name != "n1" || mc.Label != "prod" || mc.AdvertisePort != 7946 || mc.Keyring == nil || len(mc.Keyring.GetPrimaryKey()) != 16 ||
		!mc.GossipVerifyIncoming || !mc.GossipVerifyOutgoing {
		t.Fatalf("%+v", mc)
	}
	if mc.ProbeInterval != DefaultProbeInterval || mc.ProbeTimeout != DefaultProbeTimeout ||
		mc.SuspicionMult != DefaultSuspicionMult || mc.SuspicionMaxTimeoutMult != DefaultSuspicionMaxTimeoutMult ||
		mc.GossipInterval != DefaultGossipInterval || mc.DeadNodeReclaimTime != DefaultDeadNodeReclaimTime ||
		mc.TCPTimeout != DefaultTCPTimeout || mc.PushPullInterval != DefaultPushPullInterval {
		t.Fatalf("timings not applied: %+v", mc)
	}
	if mc.Delegate == nil || mc.Events == nil || mc.Ping == nil || mc.Conflict == nil || mc.Logger == nil {
		t.Fatal("delegates or logger missing")
	}
}
