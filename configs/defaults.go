package configs

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// Default returns a new Config holding every documented default. Keys that
// are required (cluster.node_id, cluster.data_directory) or derived from
// other keys (see FillDerived) are left zero. Each call returns fresh slices
// and maps, so callers may modify the result freely.
func Default() *Config {
	return &Config{
		Cluster: ClusterConfig{
			ClusterName: "ramd",
			ExpectNodes: 1,
			LogLevel:    "info",
			PrimaryPort: 5432,
			Election:    "quorum",
		},
		Mesh: MeshConfig{
			BindAddr:         "0.0.0.0",
			BindPort:         7946,
			ProbeInterval:    Duration{250 * time.Millisecond},
			ProbeTimeout:     Duration{200 * time.Millisecond},
			SuspicionMult:    4,
			GossipInterval:   Duration{100 * time.Millisecond},
			GossipNodes:      3,
			PushPullInterval: Duration{5 * time.Second},
			RejoinInterval:   Duration{5 * time.Second},
		},
		API: APIConfig{
			Host:               "0.0.0.0",
			Port:               8080,
			PublicHealthChecks: true,
			VerifyClient:       "none",
		},
		PostgreSQL: PostgreSQLConfig{
			Host:            "127.0.0.1",
			Port:            5432,
			User:            "postgres",
			Database:        "postgres",
			SSLMode:         "prefer",
			ReplicationUser: "replicator",
			HBANetworks:     []string{"samenet"},
			RunAsUser:       "postgres",
			HealthInterval:  Duration{500 * time.Millisecond},
			ConnectTimeout:  Duration{3 * time.Second},
		},
		Monitoring: MonitoringConfig{
			PrometheusEnabled: true,
			PrometheusPort:    9090,
			MetricsInterval:   Duration{15 * time.Second},
		},
		Logging: LoggingConfig{Format: "json"},
		Failover: FailoverConfig{
			LeaseTTL:             Duration{2 * time.Second},
			LeaseRenewInterval:   Duration{500 * time.Millisecond},
			MaxClockDriftPPM:     10000,
			FailAfter:            Duration{500 * time.Millisecond},
			PrimaryStartTimeout:  Duration{10 * time.Second},
			Fencing:              "lease",
			SynchronousMode:      "off",
			SynchronousNodeCount: 1,
			MaximumLagOnFailover: 1 << 20,
		},
	}
}

// FillDerived fills the defaults that depend on other keys, leaving any key
// that is already set alone, and makes every path absolute:
//
//   - cluster.node_name: "node<node_id>" (when node_id > 0)
//   - cluster.primary_port: 5432 when primary_host is set
//   - cluster.state_directory: "<parent of data_directory>/ramd-state-<node_name>",
//     so that nodes whose data directories share a parent get distinct
//     state directories, and the state survives the data directory being
//     moved aside
//   - postgresql.socket_directory: "<state_directory>/run"
//   - backup.directory: "<state_directory>/backups"
//   - postgresql.replication_password: postgresql.password
//   - mesh.advertise_port: mesh.bind_port
//
// Relative paths (data, state, socket and bin directories, API cert, key
// and token files, the audit log, the log file) are resolved against baseDir, itself resolved against the current
// directory; "" means the current directory. Paths are cleaned. Parse calls
// FillDerived with the directory of the configuration file; code that builds
// a Config by hand calls it before Validate. It fails only when the current
// directory cannot be determined.
func (c *Config) FillDerived(baseDir string) error {
	cl, pg := &c.Cluster, &c.PostgreSQL
	if cl.NodeName == "" && cl.NodeID > 0 {
		cl.NodeName = "node" + strconv.Itoa(cl.NodeID)
	}
	if cl.PrimaryHost != "" && cl.PrimaryPort == 0 {
		cl.PrimaryPort = 5432
	}
	if c.Mesh.AdvertisePort == 0 {
		c.Mesh.AdvertisePort = c.Mesh.BindPort
	}
	if pg.ReplicationPassword == "" {
		pg.ReplicationPassword = pg.Password
	}

	// Explicit paths first, so that the derived ones below are built from
	// absolute, cleaned parents.
	for _, p := range []*string{&cl.DataDirectory, &cl.StateDirectory, &pg.SocketDirectory,
		&pg.BinDirectory, &c.API.CertFile, &c.API.KeyFile, &c.API.AuthTokenFile, &c.Security.AuditLog, &c.Backup.Directory,
		&c.API.ClientCAFile, &c.API.CAFile, &c.Mesh.EncryptKeyFile, &c.Logging.File} {
		if err := absPath(p, baseDir); err != nil {
			return err
		}
	}
	if cl.StateDirectory == "" && cl.DataDirectory != "" && cl.NodeName != "" {
		cl.StateDirectory = filepath.Join(filepath.Dir(cl.DataDirectory), "ramd-state-"+cl.NodeName)
	}
	if pg.SocketDirectory == "" && cl.StateDirectory != "" {
		pg.SocketDirectory = filepath.Join(cl.StateDirectory, "run")
	}
	if c.Backup.Directory == "" && cl.StateDirectory != "" {
		c.Backup.Directory = filepath.Join(cl.StateDirectory, "backups")
	}
	return nil
}

// absPath makes *p absolute relative to base and cleans it. Empty stays
// empty: an unset path is either derived or reported by Validate.
func absPath(p *string, base string) error {
	if *p == "" {
		return nil
	}
	path := *p
	if !filepath.IsAbs(path) {
		path = filepath.Join(base, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("configs: resolving %q: %w", *p, err)
	}
	*p = abs
	return nil
}
