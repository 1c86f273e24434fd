package configs

import "time"

// Config is one node's complete configuration, as read from its TOML file,
// completed with defaults and overridden by RAMD_* environment variables.
// Every field documents its unit and default; Validate rejects
// contradictions before anything starts.
//
// A Config returned by Parse or Load is complete: derived defaults (those
// documented as "Default: derived ...") are filled in and every path is
// absolute. A Config built in code should go through FillDerived and
// Validate before use.
type Config struct {
	Cluster    ClusterConfig    `toml:"cluster"`
	Mesh       MeshConfig       `toml:"mesh"`
	API        APIConfig        `toml:"api"`
	PostgreSQL PostgreSQLConfig `toml:"postgresql"`
	Monitoring MonitoringConfig `toml:"monitoring"`
	Security   SecurityConfig   `toml:"security"`
	Failover   FailoverConfig   `toml:"failover"`
	Backup     BackupConfig     `toml:"backup"`
	Logging    LoggingConfig    `toml:"logging"`
}

// BackupConfig configures base backups (POST /api/v1/backup/create).
type BackupConfig struct {
	// Directory is where this node keeps the backups it takes, one
	// subdirectory per backup (created mode 0700, owned by the user
	// PostgreSQL runs as). Each backup is a full uncompressed copy of the
	// cluster (PostgreSQL 15's pg_verifybackup checks only that plain
	// format), so put it on a volume with room for as many copies as you
	// keep, ideally another disk than the data directory: on the same disk
	// a backup does not survive the disk. It must be neither inside the
	// data directory (a base backup would copy the backups, and a restore
	// would move them aside) nor contain it.
	// Default: derived, "<state_directory>/backups". A relative path is
	// relative to the directory of the configuration file.
	Directory string `toml:"directory"`
}

// ClusterConfig identifies this node and the cluster it belongs to.
type ClusterConfig struct {
	// NodeID is this node's unique, positive integer id. Required.
	// Ties in bootstrap are broken by the lowest id.
	NodeID int `toml:"node_id"`
	// NodeName is the unique name used in the mesh, as the standby's
	// application_name and as the replication slot suffix.
	// Default: derived, "node<node_id>". Lowercase letters, digits and
	// underscores, starting with a letter, at most 63 characters (it becomes
	// part of a replication slot name, which PostgreSQL limits to lowercase).
	NodeName string `toml:"node_name"`
	// ClusterName is the memberlist label: two clusters on one network with
	// different names never merge. Default: "ramd".
	ClusterName string `toml:"cluster_name"`
	// Join lists gossip seeds as "host:port". Empty means this node waits to
	// be joined by others. Seeds are re-joined periodically so the mesh heals
	// after a partition. Default: empty.
	Join []string `toml:"join"`
	// ExpectNodes is how many daemons must see each other before an empty
	// cluster is bootstrapped (as Consul's bootstrap_expect). Set it to the
	// cluster size; a value at or below half the cluster risks two separate
	// bootstraps. Default: 1.
	ExpectNodes int `toml:"expect_nodes"`
	// DataDirectory is the PostgreSQL data directory. Required. ramd never
	// deletes it; a directory it must replace is moved aside. A relative path
	// is relative to the directory of the configuration file.
	DataDirectory string `toml:"data_directory"`
	// StateDirectory holds ramd's own state (cluster identity, pid file,
	// later the election log). It must be neither the data directory nor
	// inside it (a base backup or a moved-aside data directory would take
	// ramd's identity with it), nor contain it.
	// Default: derived, "<parent of data_directory>/ramd-state-<node_name>",
	// so several nodes may share one parent directory. A relative path is
	// relative to the directory of the configuration file.
	StateDirectory string `toml:"state_directory"`
	// LogLevel is one of debug, info, warn, error. Default: "info".
	LogLevel string `toml:"log_level"`
	// PrimaryHost, PrimaryPort and ReplicaHosts come from the original RAMD
	// configuration. ramd discovers roles through gossip, so these are
	// accepted for compatibility: when PrimaryHost is set and this node has
	// an empty data directory and no primary is visible in the mesh, the
	// node clones from PrimaryHost:PrimaryPort (adopting an existing,
	// unmanaged primary). ReplicaHosts is informational only.
	// PrimaryHost default: "" (none). PrimaryPort default: 5432.
	// ReplicaHosts default: empty.
	PrimaryHost  string   `toml:"primary_host"`
	PrimaryPort  int      `toml:"primary_port"`
	ReplicaHosts []string `toml:"replica_hosts"`
	// Tags are free-form labels gossiped with the node's state (Patroni's
	// tags): nofailover, noloadbalance, and anything an operator wants to
	// filter /replica?tag_key=value on. Keys and values are non-empty and
	// contain no whitespace. Default: none.
	Tags map[string]string `toml:"tags"`
	// Election chooses the election backend: "quorum" (raft among the
	// daemons; the lease is granted by a majority of voters, so a cluster
	// needs three daemons to survive one failure) or "pglock" (the state,
	// the coordinator lock and the lease live in a separate coordination
	// PostgreSQL database, coordination_dsn; two-node clusters work). See
	// docs/design.md. Default: "quorum".
	Election string `toml:"election"`
	// CoordinationDSN is the coordination database's connection string
	// (libpq keyword/value or postgres:// URL) for election = "pglock";
	// required there, refused otherwise. Every node of a cluster must name
	// the same database. The user needs CREATE on the database the first
	// time (ramd creates schema "ramd"). It may hold a password: it is
	// redacted wherever the configuration is shown. Default: "".
	CoordinationDSN string `toml:"coordination_dsn"`
}

// MeshConfig configures SWIM gossip (hashicorp/memberlist). The defaults
// are tuned for a LAN failover manager: a dead node is declared in about a
// second, not memberlist's 5-7 s LAN default.
type MeshConfig struct {
	// BindAddr is the IP address gossip listens on (memberlist needs an IP,
	// not a host name). Default: "0.0.0.0".
	BindAddr string `toml:"bind_addr"`
	// BindPort is the gossip port (UDP and TCP). Default: 7946.
	BindPort int `toml:"bind_port"`
	// AdvertiseAddr is the IP address other nodes use to reach this one.
	// Default: "" - memberlist advertises BindAddr, or when BindAddr is a
	// wildcard, the host's first private IP. Set it when the host has several
	// addresses and BindAddr is 0.0.0.0, or behind NAT.
	AdvertiseAddr string `toml:"advertise_addr"`
	// AdvertisePort is the gossip port advertised to peers.
	// Default: derived, BindPort.
	AdvertisePort int `toml:"advertise_port"`
	// EncryptKey is a base64 AES key (16, 24 or 32 bytes; `ramd keygen`
	// prints a 32-byte one) for gossip encryption (AES-GCM, memberlist's
	// keyring). With a key, packets without it are refused: a daemon with
	// another key or none can neither join nor send anything. Empty means
	// plaintext, logged as a warning and reported by /api/v1/cluster/health
	// on a non-loopback bind_addr. Once the daemon has run with a key, the
	// keyring file in the state directory (gossip.keyring, 0600) holds the
	// installed keys and wins over this setting, so that a restart after a
	// rotation (ramctl keys) keeps the rotated keys. Prefer EncryptKeyFile
	// or RAMD_MESH_ENCRYPT_KEY to keep it out of the file. Default: "".
	EncryptKey string `toml:"encrypt_key"`
	// EncryptKeyFile reads EncryptKey from a file (surrounding whitespace
	// trimmed), refused when group or others may read it; exclusive with
	// EncryptKey. A relative path is relative to the directory of the
	// configuration file. Default: "".
	EncryptKeyFile string `toml:"encrypt_key_file"`
	// ProbeInterval is how often a random member is probed. Lower detects
	// failures faster and costs more packets. Default: 250ms.
	// Range: 10ms to 60s.
	ProbeInterval Duration `toml:"probe_interval"`
	// ProbeTimeout is how long to wait for a probe's ack before indirect
	// probes. Keep it above the worst RTT plus GC/CPU-steal jitter, or
	// healthy nodes get suspected on a loaded host. Must be below
	// ProbeInterval. Default: 200ms.
	ProbeTimeout Duration `toml:"probe_timeout"`
	// SuspicionMult scales how long a suspected node has to refute before it
	// is declared dead: SuspicionMult * max(1, log10(n)) * ProbeInterval.
	// At least 1. Default: 4.
	SuspicionMult int `toml:"suspicion_mult"`
	// GossipInterval is how often state is gossiped to GossipNodes random
	// members. A state change reaches a small cluster in about one
	// interval; halving it costs idle CPU (measured: 50ms adds about 0.2%
	// of a core per daemon on a 3-node cluster). Default: 100ms.
	GossipInterval Duration `toml:"gossip_interval"`
	// GossipNodes is the fan-out of each gossip round. At least 1.
	// Default: 3.
	GossipNodes int `toml:"gossip_nodes"`
	// PushPullInterval is how often a full state exchange with one random
	// member happens; it repairs anything gossip lost. Default: 5s.
	PushPullInterval Duration `toml:"push_pull_interval"`
	// RejoinInterval is how often the seeds in [cluster] join are contacted
	// again, so that the mesh re-merges after a partition (memberlist does
	// not do this by itself). Default: 5s.
	RejoinInterval Duration `toml:"rejoin_interval"`
}

// APIConfig configures the REST API and HAProxy health checks.
type APIConfig struct {
	// Host is the address the API and the Prometheus endpoint listen on.
	// "0.0.0.0", "::" or "" mean every address. Default: "0.0.0.0".
	Host string `toml:"host"`
	// Port is the API port. Default: 8080.
	Port int `toml:"port"`
	// AdvertiseURL is the URL other nodes and ramctl use to reach this API.
	// Default: "" - APIURL derives http(s)://<host>:<port>, using the mesh
	// advertise host when Host is a wildcard.
	AdvertiseURL string `toml:"advertise_url"`
	// SSLEnabled serves the API over TLS with CertFile and KeyFile, which
	// are then required (PEM files; relative paths are relative to the
	// directory of the configuration file). Default: false, "", "".
	// TLS 1.2 is the minimum version; plain HTTP to a TLS port gets a 400
	// and is never served. The same certificate is this node's client
	// certificate when it calls another node's API (forwarded backup and
	// restore requests), so with verify_client = "required" it must allow
	// client authentication (no extended key usage, or clientAuth too).
	SSLEnabled bool   `toml:"ssl_enabled"`
	CertFile   string `toml:"cert_file"`
	KeyFile    string `toml:"key_file"`
	// ClientCAFile is a PEM bundle of the certificate authorities whose
	// client certificates the API accepts; it needs ssl_enabled and a
	// verify_client other than "none". Default: "".
	ClientCAFile string `toml:"client_ca_file"`
	// VerifyClient asks API clients for a certificate signed by
	// ClientCAFile: "none" (not asked), "optional" (a certificate that is
	// presented must verify; clients without one still get in, with their
	// token) or "required" (no valid certificate, no TLS session: not even
	// the load-balancer checks answer, so HAProxy then needs a client
	// certificate too). A certificate adds to the bearer tokens, it does
	// not replace them. Default: "none".
	VerifyClient string `toml:"verify_client"`
	// CAFile is a PEM bundle of the certificate authorities this daemon
	// trusts when it calls another node's API over https (forwarded
	// requests); "" means the system's roots. Default: "".
	CAFile string `toml:"ca_file"`
	// AuthToken is the admin bearer token: every mutating endpoint
	// (switchover, maintenance...) requires it, and with none configured
	// they are refused. At least 16 characters. Prefer AuthTokenFile or
	// RAMD_API_AUTH_TOKEN to keep it out of the file. Default: "".
	AuthToken string `toml:"auth_token"`
	// AuthTokenFile reads AuthToken from a file (surrounding whitespace
	// trimmed); exclusive with AuthToken. Default: "".
	AuthTokenFile string `toml:"auth_token_file"`
	// ReadToken lets its holder use the read endpoints only. Once either
	// token is set, read endpoints require one of them (except the
	// load-balancer checks, see PublicHealthChecks). Default: "".
	ReadToken string `toml:"read_token"`
	// PublicHealthChecks keeps the load-balancer checks (/primary,
	// /replica, /read-only, /health and the like, /api/v1/health) open
	// without a token, so HAProxy needs no credentials. Default: true.
	PublicHealthChecks bool `toml:"public_health_checks"`
}

// PostgreSQLConfig describes the local PostgreSQL server ramd manages.
type PostgreSQLConfig struct {
	// Host is the address PostgreSQL listens on and that peers and clients
	// use to reach it (listen_addresses), so it cannot be a wildcard such
	// as 0.0.0.0. Default: "127.0.0.1".
	Host string `toml:"host"`
	// Port is PostgreSQL's port. Default: 5432.
	Port int `toml:"port"`
	// User is the superuser ramd connects as and creates at bootstrap.
	// Default: "postgres".
	User string `toml:"user"`
	// Password is the superuser's password, set at bootstrap (scram).
	// Required for a cluster whose nodes connect over the network: Validate
	// rejects an empty password (and replication password) when
	// expect_nodes > 1 or join is set. Default: "".
	Password string `toml:"password"`
	// Database is the database ramd connects to. Default: "postgres".
	Database string `toml:"database"`
	// SSLMode is the libpq sslmode for ramd's own connections: disable,
	// allow, prefer, require, verify-ca or verify-full. Default: "prefer".
	SSLMode string `toml:"ssl_mode"`
	// BinDirectory holds initdb, pg_ctl, pg_basebackup... Default: auto
	// (pg_config --bindir, then the newest /usr/lib/postgresql/*/bin).
	// A relative path is relative to the directory of the configuration file.
	BinDirectory string `toml:"bin_directory"`
	// ReplicationUser is the role replicas stream as. Default: "replicator".
	ReplicationUser string `toml:"replication_user"`
	// ReplicationPassword is its password. Default: derived, Password.
	ReplicationPassword string `toml:"replication_password"`
	// SocketDirectory is where PostgreSQL puts its Unix socket (the only
	// place left on trust auth). The socket path
	// "<socket_directory>/.s.PGSQL.<port>" must fit in 107 bytes.
	// Default: derived, "<state_directory>/run". A relative path is relative
	// to the directory of the configuration file.
	SocketDirectory string `toml:"socket_directory"`
	// HBANetworks are the networks allowed to connect with a password and to
	// replicate (pg_hba.conf address field: CIDRs, single IPs, or
	// samenet/samehost/all). At least one. Default: ["samenet"].
	HBANetworks []string `toml:"hba_networks"`
	// RunAsUser is the OS user PostgreSQL runs as when ramd runs as root.
	// Ignored otherwise (PostgreSQL runs as ramd's user). Default: "postgres".
	RunAsUser string `toml:"run_as_user"`
	// HealthInterval is how often the local PostgreSQL is checked.
	// Default: 500ms. Range: 100ms to 10s.
	HealthInterval Duration `toml:"health_interval"`
	// ConnectTimeout bounds every connection ramd opens. Must be positive.
	// Default: 3s.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// Parameters are extra postgresql.conf settings, applied on every start.
	// Values may be strings, integers, floats or booleans. Settings ramd
	// manages itself (port, listen_addresses, primary_conninfo...) are
	// rejected; see Parameters. Default: none.
	Parameters Parameters `toml:"parameters"`
}

// MonitoringConfig configures the Prometheus endpoint.
type MonitoringConfig struct {
	// PrometheusEnabled serves /metrics on PrometheusPort. Default: true.
	PrometheusEnabled bool `toml:"prometheus_enabled"`
	// PrometheusPort is the metrics port. It listens on api.host, so it
	// must differ from the API port. Default: 9090.
	PrometheusPort int `toml:"prometheus_port"`
	// MetricsInterval is how often PostgreSQL statistics are collected for
	// metrics. It does not affect failure detection. At least 1s.
	// Default: 15s.
	MetricsInterval Duration `toml:"metrics_interval"`
}

// SecurityConfig protects the REST API (the load-balancer checks
// included; not the Prometheus endpoint). See docs/security.md.
type SecurityConfig struct {
	// RateLimit is requests per second per client IP (token bucket, burst
	// equal to the rate); over it the API answers 429 with Retry-After.
	// The load-balancer checks and /api/v1/health are exempt. IPv6 clients
	// are counted per /64. 0 disables. Default: 0.
	RateLimit int `toml:"rate_limit"`
	// MaxConnections caps concurrent API connections; further connections
	// wait in the kernel's accept queue until one closes. 0 means no cap.
	// Default: 0.
	MaxConnections int `toml:"max_connections"`
	// BlockedIPs are addresses or CIDRs refused by the API with 403 before
	// any other work, the checks included. Default: none.
	BlockedIPs []string `toml:"blocked_ips"`
	// TrustedProxies are addresses or CIDRs of reverse proxies in front of
	// the API. Only when the direct peer is one of them is the client
	// address taken from X-Forwarded-For (its rightmost address that is
	// not a trusted proxy); otherwise the header is ignored. Rate limits,
	// blocked_ips and the audit log use that client address.
	// Default: none.
	TrustedProxies []string `toml:"trusted_proxies"`
	// AuditLog is a file every mutating API request is appended to as one
	// JSON line (who, client, method, path, status, duration; never a
	// token). Created with mode 0600 and opened at startup. The same
	// records are logged with component=audit in any case. A relative path
	// is relative to the directory of the configuration file.
	// Default: "" (log only).
	AuditLog string `toml:"audit_log"`
}

// Duration is a time.Duration written in TOML as a string with a unit
// ("250ms", "5s", "1m30s"). Bare numbers other than 0 are rejected: Patroni
// writes seconds, other tools milliseconds, and guessing wrong is a silent
// factor-of-1000 error. See duration.go.
type Duration struct{ time.Duration }

// Parameters are postgresql.conf settings rendered as strings, in the form
// postgresql.conf takes them ("on"/"off" for booleans). Names match
// ^[a-z_][a-z0-9_.]*$. See parameters.go for the settings ramd refuses
// because it manages them.
type Parameters map[string]string

// FailoverConfig tunes failure detection and the primary lease. The
// arithmetic is in docs/design.md: a primary's lease ends at
// sent + lease_ttl - margin on its own clock, a grant binds a voter until
// received + lease_ttl + margin, with margin = 2 * lease_ttl * drift + 50ms
// for drift = max_clock_drift_ppm / 1e6.
type FailoverConfig struct {
	// LeaseTTL is how long one renewal of the primary lease lasts. After a
	// primary becomes unreachable, a new primary is promoted no sooner than
	// this (plus the margin) after its last renewal: lower fails over
	// faster, but a primary that cannot renew for this long (a loaded
	// host, a network blip) steps down. Default: 2s.
	LeaseTTL Duration `toml:"lease_ttl"`
	// LeaseRenewInterval is how often the primary renews its lease; at
	// most lease_ttl / 3 so that two renewals may be lost in a row.
	// Default: 500ms.
	LeaseRenewInterval Duration `toml:"lease_renew_interval"`
	// MaxClockDriftPPM bounds how much faster or slower one node's
	// monotonic clock may run than another's, in parts per million; the
	// lease margin covers it. Default: 10000 (1%), far above what NTP
	// disciplined or even free-running quartz clocks do.
	MaxClockDriftPPM int `toml:"max_clock_drift_ppm"`
	// FailAfter is how long the primary must look down (its daemon dead
	// in the mesh and its lease renewals silent) before a failover starts.
	// Default: 500ms.
	FailAfter Duration `toml:"fail_after"`
	// PrimaryStartTimeout is how long a primary whose PostgreSQL crashed
	// but whose daemon runs gets to restart it in place (no data lost, no
	// new timeline) before the cluster fails over. Longer avoids
	// failovers for quick crashes; shorter bounds the write outage when
	// PostgreSQL will not come back. Default: 10s.
	PrimaryStartTimeout Duration `toml:"primary_start_timeout"`
	// Fencing is how an old primary is kept from acknowledging writes
	// once its lease has expired. "lease": every commit on the primary
	// waits (through PostgreSQL's synchronous replication) for a
	// confirmation the daemon gives only while it holds the lease, so a
	// primary whose daemon is frozen, killed or cut off stops
	// acknowledging commits by itself; costs about 0.3 ms per commit on
	// loopback. "none": the daemon fences PostgreSQL when its lease ends,
	// which needs the daemon alive. Default: "lease".
	Fencing string `toml:"fencing"`
	// SynchronousMode bounds which commits may be lost at failover.
	// "off": asynchronous replication; a failover loses the commits the
	// promoted replica had not received, at most maximum_lag_on_failover
	// bytes behind where the failed primary was last seen, plus what it
	// acknowledged unseen after that: its position is gossiped after every
	// health check (about 0.6 s of writes after a crash), and a primary cut
	// off from the others goes on acknowledging until its lease ends (up
	// to lease_ttl more). "quorum": a commit is acknowledged only
	// once synchronous_node_count of the healthy replicas flushed it, and
	// a failover promotes only a replica that provably holds every
	// acknowledged commit; when no replica is healthy at all the primary
	// falls back to asynchronous commits rather than stop writes. "strict":
	// as quorum, but never falls back: with fewer than
	// synchronous_node_count healthy replicas commits wait. Needs fencing =
	// "lease" (the lease gate enforces the quorum). Costs one replica
	// round trip per commit. Default: "off".
	SynchronousMode string `toml:"synchronous_mode"`
	// SynchronousNodeCount is k: how many replicas must flush a commit
	// before it is acknowledged in the synchronous modes. Higher survives
	// more simultaneous losses; every commit waits for the k-th fastest
	// replica. In quorum mode k is lowered to the number of healthy
	// replicas when fewer remain. Default: 1.
	SynchronousNodeCount int `toml:"synchronous_node_count"`
	// MaximumLagOnFailover (bytes): a replica further than this behind the
	// most advanced reported replica is not promoted, nor, in
	// asynchronous mode, one further than this behind the position the
	// failed primary was last seen at (its gossiped state), as in Patroni.
	// When every replica lags that much no failover happens automatically:
	// the cluster waits without a primary (the status's failover phase
	// says why) until the failed primary comes back — it is then promoted
	// again, losing nothing — or an operator runs `ramctl failover
	// --candidate N`, which promotes a replica anyway (losing that WAL). Smaller loses less and fails over less often under heavy
	// writes. 0 disables the check. Default: 1048576 (1 MiB), as Patroni.
	MaximumLagOnFailover int `toml:"maximum_lag_on_failover"`
}

// LoggingConfig says how the daemon writes its log. The level is
// [cluster] log_level (kept there for compatibility with the original
// RAMD configuration). Every line carries timestamp, level, component and
// message; state changes (role, token, lease, members, promotion, rewind,
// base backup) are one info line each with the node, token and reason.
type LoggingConfig struct {
	// Format is "json" (one JSON object per line: for log shippers and
	// jq) or "text" (key=value pairs, easier to read on a terminal; the
	// same keys, so `grep component=election` works). Default: "json".
	Format string `toml:"format"`
	// File is the log file, opened for appending (mode 0640). ramd
	// reopens it on SIGHUP (and on POST /api/v1/node/reload), so
	// logrotate can rename it and signal, without copytruncate's risk of
	// losing the lines written during the copy. Empty logs to stderr
	// (journald under systemd; "ramd start" without --foreground then
	// redirects stderr to <state_directory>/ramd.log, which is not
	// reopened). A relative path is relative to the directory of the
	// configuration file. Default: "" (stderr).
	File string `toml:"file"`
}
