package configs

import (
	"strings"
	"testing"
	"time"
)

// validConfig returns a complete, valid three-node configuration.
func validConfig(t *testing.T) *Config {
	t.Helper()
	return mustParse(t, `
[cluster]
node_id = 1
join = ["10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"]
expect_nodes = 3
data_directory = "/srv/pg/data"
[cluster.tags]
zone = "a"
[mesh]
bind_addr = "10.0.0.1"
[api]
host = "10.0.0.1"
[postgresql]
host = "10.0.0.1"
password = "secret"
hba_networks = ["10.0.0.0/24"]
`)
}

func ms(n int) Duration { return Duration{time.Duration(n) * time.Millisecond} }

func TestValidateRules(t *testing.T) {
	if err := validConfig(t).Validate(); err != nil {
		t.Fatalf("base config invalid: %v", err)
	}
	long := "/" + strings.Repeat("d", 100)
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   string // a key the error must name
	}{
		{"node_id zero", func(c *Config) { c.Cluster.NodeID = 0 }, "cluster.node_id"},
		{"node_id negative", func(c *Config) { c.Cluster.NodeID = -3 }, "cluster.node_id"},
		{"node_name empty", func(c *Config) { c.Cluster.NodeName = "" }, "cluster.node_name"},
		{"node_name upper", func(c *Config) { c.Cluster.NodeName = "Node1" }, "cluster.node_name"},
		{"node_name digit first", func(c *Config) { c.Cluster.NodeName = "1node" }, "cluster.node_name"},
		{"node_name dash", func(c *Config) { c.Cluster.NodeName = "node-1" }, "cluster.node_name"},
		{"node_name too long", func(c *Config) { c.Cluster.NodeName = "n" + strings.Repeat("x", 63) }, "cluster.node_name"},
		{"cluster_name empty", func(c *Config) { c.Cluster.ClusterName = "" }, "cluster.cluster_name"},
		{"cluster_name space", func(c *Config) { c.Cluster.ClusterName = "my cluster" }, "cluster.cluster_name"},
		{"join no port", func(c *Config) { c.Cluster.Join = []string{"10.0.0.1"} }, "cluster.join[0]"},
		{"join port zero", func(c *Config) { c.Cluster.Join = []string{"a:1", "b:0"} }, "cluster.join[1]"},
		{"join port big", func(c *Config) { c.Cluster.Join = []string{"a:70000"} }, "cluster.join[0]"},
		{"join port name", func(c *Config) { c.Cluster.Join = []string{"a:gossip"} }, "cluster.join[0]"},
		{"join no host", func(c *Config) { c.Cluster.Join = []string{":7946"} }, "cluster.join[0]"},
		{"expect_nodes zero", func(c *Config) { c.Cluster.ExpectNodes = 0 }, "cluster.expect_nodes"},
		{"expect_nodes 65", func(c *Config) { c.Cluster.ExpectNodes = 65 }, "cluster.expect_nodes"},
		{"data_directory empty", func(c *Config) { c.Cluster.DataDirectory = "" }, "cluster.data_directory"},
		{"data_directory relative", func(c *Config) { c.Cluster.DataDirectory = "data" }, "cluster.data_directory"},
		{"state_directory empty", func(c *Config) { c.Cluster.StateDirectory = "" }, "cluster.state_directory"},
		{"state_directory relative", func(c *Config) { c.Cluster.StateDirectory = "state" }, "cluster.state_directory"},
		{"state equals data", func(c *Config) { c.Cluster.StateDirectory = c.Cluster.DataDirectory }, "cluster.state_directory"},
		{"state inside data", func(c *Config) { c.Cluster.StateDirectory = "/srv/pg/data/ramd" }, "cluster.state_directory"},
		{"state contains data", func(c *Config) { c.Cluster.StateDirectory = "/srv" }, "cluster.state_directory"},
		{"log_level", func(c *Config) { c.Cluster.LogLevel = "verbose" }, "cluster.log_level"},
		{"backup directory empty", func(c *Config) { c.Backup.Directory = "" }, "backup.directory"},
		{"backup directory relative", func(c *Config) { c.Backup.Directory = "backups" }, "backup.directory"},
		{"backup directory inside data", func(c *Config) { c.Backup.Directory = "/srv/pg/data/backups" }, "backup.directory"},
		{"backup directory contains data", func(c *Config) { c.Backup.Directory = "/srv/pg" }, "backup.directory"},
		{"log_level case", func(c *Config) { c.Cluster.LogLevel = "INFO" }, "cluster.log_level"},
		{"primary_port zero", func(c *Config) { c.Cluster.PrimaryHost = "old"; c.Cluster.PrimaryPort = 0 }, "cluster.primary_port"},
		{"primary_port big", func(c *Config) { c.Cluster.PrimaryHost = "old"; c.Cluster.PrimaryPort = 65536 }, "cluster.primary_port"},
		{"tag key space", func(c *Config) { c.Cluster.Tags = map[string]string{"my tag": "x"} }, "cluster.tags"},
		{"tag key empty", func(c *Config) { c.Cluster.Tags = map[string]string{"": "x"} }, "cluster.tags"},
		{"tag value empty", func(c *Config) { c.Cluster.Tags = map[string]string{"zone": ""} }, "cluster.tags.zone"},
		{"tag value space", func(c *Config) { c.Cluster.Tags = map[string]string{"zone": "eu west"} }, "cluster.tags.zone"},

		{"bind_addr name", func(c *Config) { c.Mesh.BindAddr = "localhost" }, "mesh.bind_addr"},
		{"bind_addr empty", func(c *Config) { c.Mesh.BindAddr = "" }, "mesh.bind_addr"},
		{"bind_port zero", func(c *Config) { c.Mesh.BindPort = 0 }, "mesh.bind_port"},
		{"bind_port big", func(c *Config) { c.Mesh.BindPort = 65536 }, "mesh.bind_port"},
		{"advertise_addr name", func(c *Config) { c.Mesh.AdvertiseAddr = "db1.example" }, "mesh.advertise_addr"},
		{"advertise_addr wildcard", func(c *Config) { c.Mesh.AdvertiseAddr = "0.0.0.0" }, "mesh.advertise_addr"},
		{"advertise_port", func(c *Config) { c.Mesh.AdvertisePort = -1 }, "mesh.advertise_port"},
		{"encrypt_key base64", func(c *Config) { c.Mesh.EncryptKey = "not base64!" }, "mesh.encrypt_key"},
		{"encrypt_key length", func(c *Config) { c.Mesh.EncryptKey = "MDEyMzQ1Njc4OQ==" }, "mesh.encrypt_key"},
		{"probe_interval low", func(c *Config) { c.Mesh.ProbeInterval = ms(5); c.Mesh.ProbeTimeout = ms(1) }, "mesh.probe_interval"},
		{"probe_interval high", func(c *Config) { c.Mesh.ProbeInterval = ms(61000) }, "mesh.probe_interval"},
		{"probe_timeout equal", func(c *Config) { c.Mesh.ProbeTimeout = c.Mesh.ProbeInterval }, "mesh.probe_timeout"},
		{"probe_timeout above", func(c *Config) { c.Mesh.ProbeTimeout = ms(300) }, "mesh.probe_timeout"},
		{"probe_timeout zero", func(c *Config) { c.Mesh.ProbeTimeout = ms(0) }, "mesh.probe_timeout"},
		{"suspicion_mult", func(c *Config) { c.Mesh.SuspicionMult = 0 }, "mesh.suspicion_mult"},
		{"gossip_nodes", func(c *Config) { c.Mesh.GossipNodes = 0 }, "mesh.gossip_nodes"},
		{"gossip_interval", func(c *Config) { c.Mesh.GossipInterval = ms(0) }, "mesh.gossip_interval"},
		{"push_pull_interval", func(c *Config) { c.Mesh.PushPullInterval = ms(0) }, "mesh.push_pull_interval"},
		{"rejoin_interval", func(c *Config) { c.Mesh.RejoinInterval = ms(-1) }, "mesh.rejoin_interval"},
		{"lease_ttl too short", func(c *Config) { c.Failover.LeaseTTL = ms(100); c.Failover.LeaseRenewInterval = ms(20) }, "failover.lease_ttl"},
		{"renew over ttl/3", func(c *Config) { c.Failover.LeaseRenewInterval = ms(1000) }, "failover.lease_renew_interval"},
		{"drift out of range", func(c *Config) { c.Failover.MaxClockDriftPPM = 0 }, "failover.max_clock_drift_ppm"},
		{"fencing unknown", func(c *Config) { c.Failover.Fencing = "stonith" }, "failover.fencing"},
		{"fail_after zero", func(c *Config) { c.Failover.FailAfter = ms(0) }, "failover.fail_after"},
		{"primary_start_timeout zero", func(c *Config) { c.Failover.PrimaryStartTimeout = ms(0) }, "failover.primary_start_timeout"},

		{"api.port", func(c *Config) { c.API.Port = 70000 }, "api.port"},
		{"api.port zero", func(c *Config) { c.API.Port = 0 }, "api.port"},
		{"advertise_url scheme", func(c *Config) { c.API.AdvertiseURL = "ftp://db1:8080" }, "api.advertise_url"},
		{"advertise_url no host", func(c *Config) { c.API.AdvertiseURL = "db1:8080" }, "api.advertise_url"},
		{"ssl without cert", func(c *Config) { c.API.SSLEnabled = true; c.API.KeyFile = "/k.pem" }, "api.cert_file"},
		{"ssl without key", func(c *Config) { c.API.SSLEnabled = true; c.API.CertFile = "/c.pem" }, "api.key_file"},
		{"cert relative", func(c *Config) { c.API.CertFile = "c.pem" }, "api.cert_file"},
		{"verify_client unknown", func(c *Config) { c.API.VerifyClient = "yes" }, "api.verify_client"},
		{"verify_client without tls", func(c *Config) { c.API.VerifyClient = "required"; c.API.ClientCAFile = "/ca.pem" }, "api.verify_client"},
		{"verify_client without ca", func(c *Config) {
			c.API.SSLEnabled, c.API.CertFile, c.API.KeyFile, c.API.VerifyClient = true, "/c.pem", "/k.pem", "optional"
		}, "api.client_ca_file"},
		{"client_ca_file unused", func(c *Config) { c.API.ClientCAFile = "/ca.pem" }, "api.client_ca_file"},
		{"ca_file relative", func(c *Config) { c.API.CAFile = "ca.pem" }, "api.ca_file"},
		{"encrypt_key_file relative", func(c *Config) { c.Mesh.EncryptKeyFile = "k" }, "mesh.encrypt_key_file"},
		{"encrypt_key and file", func(c *Config) {
			c.Mesh.EncryptKey, c.Mesh.EncryptKeyFile = "MDEyMzQ1Njc4OWFiY2RlZg==", "/k"
		}, "mesh.encrypt_key_file"},

		{"pg host empty", func(c *Config) { c.PostgreSQL.Host = "" }, "postgresql.host"},
		{"pg host wildcard", func(c *Config) { c.PostgreSQL.Host = "0.0.0.0" }, "postgresql.host"},
		{"pg host star", func(c *Config) { c.PostgreSQL.Host = "*" }, "postgresql.host"},
		{"pg port", func(c *Config) { c.PostgreSQL.Port = 0 }, "postgresql.port"},
		{"pg user", func(c *Config) { c.PostgreSQL.User = "" }, "postgresql.user"},
		{"pg database", func(c *Config) { c.PostgreSQL.Database = "" }, "postgresql.database"},
		{"pg replication_user", func(c *Config) { c.PostgreSQL.ReplicationUser = "" }, "postgresql.replication_user"},
		{"pg run_as_user", func(c *Config) { c.PostgreSQL.RunAsUser = "" }, "postgresql.run_as_user"},
		{"pg password multi-node", func(c *Config) { c.PostgreSQL.Password = ""; c.PostgreSQL.ReplicationPassword = "" }, "postgresql.password"},
		{"pg password join", func(c *Config) {
			c.Cluster.ExpectNodes = 1
			c.PostgreSQL.Password = ""
			c.PostgreSQL.ReplicationPassword = ""
		}, "postgresql.password"},
		{"ssl_mode", func(c *Config) { c.PostgreSQL.SSLMode = "sometimes" }, "postgresql.ssl_mode"},
		{"bin_directory relative", func(c *Config) { c.PostgreSQL.BinDirectory = "bin" }, "postgresql.bin_directory"},
		{"socket_directory empty", func(c *Config) { c.PostgreSQL.SocketDirectory = "" }, "postgresql.socket_directory"},
		{"socket_directory relative", func(c *Config) { c.PostgreSQL.SocketDirectory = "run" }, "postgresql.socket_directory"},
		{"socket_directory long", func(c *Config) { c.PostgreSQL.SocketDirectory = long }, "postgresql.socket_directory"},
		{"hba_networks empty", func(c *Config) { c.PostgreSQL.HBANetworks = nil }, "postgresql.hba_networks"},
		{"hba_networks bad cidr", func(c *Config) { c.PostgreSQL.HBANetworks = []string{"samenet", "10.0.0.0/33"} }, "postgresql.hba_networks[1]"},
		{"hba_networks word", func(c *Config) { c.PostgreSQL.HBANetworks = []string{"everyone"} }, "postgresql.hba_networks[0]"},
		{"health_interval low", func(c *Config) { c.PostgreSQL.HealthInterval = ms(50) }, "postgresql.health_interval"},
		{"health_interval high", func(c *Config) { c.PostgreSQL.HealthInterval = ms(11000) }, "postgresql.health_interval"},
		{"connect_timeout", func(c *Config) { c.PostgreSQL.ConnectTimeout = ms(0) }, "postgresql.connect_timeout"},
		{"parameters managed", func(c *Config) { c.PostgreSQL.Parameters = Parameters{"port": "1"} }, "postgresql.parameters"},
		{"parameters name", func(c *Config) { c.PostgreSQL.Parameters = Parameters{"Work_Mem": "1"} }, "postgresql.parameters"},

		{"prometheus_port", func(c *Config) { c.Monitoring.PrometheusPort = 0 }, "monitoring.prometheus_port"},
		{"metrics_interval", func(c *Config) { c.Monitoring.MetricsInterval = ms(999) }, "monitoring.metrics_interval"},
		{"log format", func(c *Config) { c.Logging.Format = "xml" }, "logging.format"},
		{"log file relative", func(c *Config) { c.Logging.File = "ramd.log" }, "logging.file"},

		{"rate_limit", func(c *Config) { c.Security.RateLimit = -1 }, "security.rate_limit"},
		{"max_connections", func(c *Config) { c.Security.MaxConnections = -1 }, "security.max_connections"},
		{"blocked_ips", func(c *Config) { c.Security.BlockedIPs = []string{"10.0.0.1", "evil.example"} }, "security.blocked_ips[1]"},
		{"trusted_proxies", func(c *Config) { c.Security.TrustedProxies = []string{"10.0.0.1/33"} }, "security.trusted_proxies[0]"},
		{"audit_log relative", func(c *Config) { c.Security.AuditLog = "audit.log" }, "security.audit_log"},

		{"api = prometheus", func(c *Config) { c.Monitoring.PrometheusPort = c.API.Port }, "api.port and monitoring.prometheus_port"},
		{"api = pg, same host", func(c *Config) { c.API.Port = 5432 }, "api.port and postgresql.port"},
		{"mesh = pg, wildcard", func(c *Config) { c.Mesh.BindAddr = "0.0.0.0"; c.Mesh.BindPort = 5432 }, "mesh.bind_port and postgresql.port"},
		{"api wildcard = mesh", func(c *Config) { c.API.Host = ""; c.API.Port = 7946 }, "api.port and mesh.bind_port"},
		{"prometheus = pg", func(c *Config) { c.Monitoring.PrometheusPort = 5432 }, "postgresql.port and monitoring.prometheus_port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			tc.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("no error")
			}
			wantContains(t, err.Error(), "configs: "+tc.want)
		})
	}
}

// TestValidateAccepts lists edge values that must stay valid.
func TestValidateAccepts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
	}{
		{"ipv6 seeds and bind", func(c *Config) {
			c.Cluster.Join = []string{"[fd00::1]:7946", "db2.example:7946"}
			c.Mesh.BindAddr = "::"
		}},
		{"wildcard bind, no advertise", func(c *Config) { c.Mesh.BindAddr = "0.0.0.0"; c.Mesh.AdvertiseAddr = "" }},
		{"advertise ipv6", func(c *Config) { c.Mesh.AdvertiseAddr = "fd00::1" }},
		{"encrypt keys", func(c *Config) { c.Mesh.EncryptKey = "MDEyMzQ1Njc4OWFiY2RlZg==" }},
		{"same port, distinct hosts", func(c *Config) { c.API.Port = 5432; c.PostgreSQL.Host = "10.0.0.9" }},
		{"prometheus disabled shares port", func(c *Config) {
			c.Monitoring.PrometheusEnabled = false
			c.Monitoring.PrometheusPort = c.API.Port
		}},
		{"prometheus disabled port zero", func(c *Config) { c.Monitoring.PrometheusEnabled = false; c.Monitoring.PrometheusPort = 0 }},
		{"hba words and ips", func(c *Config) { c.PostgreSQL.HBANetworks = []string{"samehost", "all", "10.0.0.7", "::1/128"} }},
		{"blocked cidrs", func(c *Config) { c.Security.BlockedIPs = []string{"10.0.0.0/8", "2001:db8::/32", "::1"} }},
		{"trusted proxies", func(c *Config) { c.Security.TrustedProxies = []string{"10.0.0.1", "fd00::/8"} }},
		{"audit log", func(c *Config) { c.Security.AuditLog = "/var/log/ramd/audit.log" }},
		{"single node without password", func(c *Config) {
			c.Cluster.ExpectNodes = 1
			c.Cluster.Join = nil
			c.PostgreSQL.Password = ""
			c.PostgreSQL.ReplicationPassword = ""
		}},
		{"replication password only", func(c *Config) { c.PostgreSQL.Password = "" }},
		{"range edges", func(c *Config) {
			c.Mesh.ProbeInterval = ms(10)
			c.Mesh.ProbeTimeout = ms(9)
			c.PostgreSQL.HealthInterval = ms(100)
			c.Monitoring.MetricsInterval = ms(1000)
			c.Cluster.ExpectNodes = 64
		}},
		{"state beside data with common prefix", func(c *Config) { c.Cluster.StateDirectory = "/srv/pg/data-state" }},
		{"node_name 63", func(c *Config) { c.Cluster.NodeName = "n" + strings.Repeat("x", 62) }},
		{"advertise_url", func(c *Config) { c.API.AdvertiseURL = "https://db1.example:8443/" }},
		{"primary adoption", func(c *Config) { c.Cluster.PrimaryHost = "legacy"; c.Cluster.PrimaryPort = 5432 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			tc.mutate(c)
			if err := c.Validate(); err != nil {
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
}

func TestValidateCollectsAll(t *testing.T) {
	c := validConfig(t)
	c.API.Port = 70000
	c.Mesh.GossipNodes = 0
	c.Cluster.LogLevel = "loud"
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	wantContains(t, msg, "configs: api.port: 70000 is out of range 1-65535", "configs: mesh.gossip_nodes:", "configs: cluster.log_level:")
	if n := strings.Count(msg, "\n") + 1; n != 3 {
		t.Errorf("%d errors, want 3:\n%s", n, msg)
	}
}

// TestValidateNoSecrets checks that secrets are never echoed in errors.
func TestValidateNoSecrets(t *testing.T) {
	c := validConfig(t)
	c.Mesh.EncryptKey = "c2VjcmV0LWtleQ=="
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), c.Mesh.EncryptKey) {
		t.Errorf("error missing or leaks the key: %v", err)
	}
}
