package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

var (
	// nodeNameRE: lowercase because the name becomes part of a replication
	// slot name, which PostgreSQL restricts to [a-z0-9_], at most 63 bytes.
	nodeNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	// clusterNameRE: the memberlist label travels in every packet header;
	// keep it to characters that need no quoting in logs or metrics.
	clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path is
// 108 bytes including the terminating NUL); PostgreSQL refuses to start
// with a longer one.
const maxSocketPath = 107

// problems collects validation errors, each prefixed with its key.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("configs: %s: %s", key, fmt.Sprintf(format, args...)))
}

// Validate checks a complete configuration (after FillDerived) and returns
// every problem found, joined with errors.Join, each naming its key, e.g.
// "configs: api.port: 70000 is out of range 1-65535". It does not touch the
// file system or the network: whether a directory is writable or a port free
// is for the daemon to find out when it uses them.
func (c *Config) Validate() error {
	var p problems
	c.validateCluster(&p)
	c.validateMesh(&p)
	c.validateAPI(&p)
	c.validatePostgreSQL(&p)
	c.validateMonitoring(&p)
	c.validateSecurity(&p)
	c.validateFailover(&p)
	c.validateBackup(&p)
	c.validateLogging(&p)
	c.validatePortConflicts(&p)
	return errors.Join(p...)
}

func (c *Config) validateCluster(p *problems) {
	cl := &c.Cluster
	if cl.NodeID <= 0 {
		p.add("cluster.node_id", "%d: a positive integer, unique in the cluster, is required", cl.NodeID)
	}
	if cl.NodeName == "" {
		p.add("cluster.node_name", "required (derived as node<node_id> when node_id is set)")
	} else if !nodeNameRE.MatchString(cl.NodeName) {
		p.add("cluster.node_name", "%q: must be 1-63 lowercase letters, digits or underscores, starting with a letter (it becomes part of a replication slot name)", cl.NodeName)
	}
	if cl.ClusterName == "" {
		p.add("cluster.cluster_name", "required")
	} else if !clusterNameRE.MatchString(cl.ClusterName) || len(cl.ClusterName) > 255 {
		p.add("cluster.cluster_name", "%q: must be 1-255 letters, digits, '_', '.' or '-'", cl.ClusterName)
	}
	for i, seed := range cl.Join {
		if err := checkHostPort(seed); err != nil {
			p.add(fmt.Sprintf("cluster.join[%d]", i), "%q: %v", seed, err)
		}
	}
	switch cl.Election {
	case "quorum":
		if cl.CoordinationDSN != "" {
			p.add("cluster.coordination_dsn", "set, but cluster.election is \"quorum\": the coordination database is only used with election = \"pglock\"")
		}
	case "pglock":
		if cl.CoordinationDSN == "" {
			p.add("cluster.coordination_dsn", "required with election = \"pglock\" (the coordination database's connection string)")
		} else if err := checkDSN(cl.CoordinationDSN); err != nil {
			p.add("cluster.coordination_dsn", "%v", err)
		}
	default:
		p.add("cluster.election", "%q: must be \"quorum\" or \"pglock\"", cl.Election)
	}
	if cl.ExpectNodes < 1 || cl.ExpectNodes > 64 {
		p.add("cluster.expect_nodes", "%d is out of range 1-64", cl.ExpectNodes)
	}
	switch cl.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.add("cluster.log_level", "%q: must be debug, info, warn or error", cl.LogLevel)
	}
	if cl.PrimaryHost != "" {
		checkPort(p, "cluster.primary_port", cl.PrimaryPort)
	}
	for k, v := range sortedMap(cl.Tags) {
		if k == "" || hasSpace(k) {
			p.add("cluster.tags", "tag name %q: must be non-empty without whitespace", k)
		}
		if v == "" || hasSpace(v) {
			p.add("cluster.tags."+k, "%q: must be non-empty without whitespace", v)
		}
	}

	checkDir(p, "cluster.data_directory", cl.DataDirectory, "required")
	checkDir(p, "cluster.state_directory", cl.StateDirectory, "required (derived from data_directory and node_name)")
	if filepath.IsAbs(cl.DataDirectory) && filepath.IsAbs(cl.StateDirectory) {
		switch {
		case within(cl.StateDirectory, cl.DataDirectory):
			p.add("cluster.state_directory", "%s is inside cluster.data_directory %s: ramd's state would be copied by base backups and moved aside with the data", cl.StateDirectory, cl.DataDirectory)
		case within(cl.DataDirectory, cl.StateDirectory):
			p.add("cluster.state_directory", "%s contains cluster.data_directory %s: keep them apart", cl.StateDirectory, cl.DataDirectory)
		}
	}
}

func (c *Config) validateMesh(p *problems) {
	m := &c.Mesh
	if _, err := netip.ParseAddr(m.BindAddr); err != nil {
		p.add("mesh.bind_addr", "%q: must be an IP address (memberlist does not resolve names); 0.0.0.0 listens on all", m.BindAddr)
	}
	checkPort(p, "mesh.bind_port", m.BindPort)
	if m.AdvertiseAddr != "" {
		if a, err := netip.ParseAddr(m.AdvertiseAddr); err != nil {
			p.add("mesh.advertise_addr", "%q: must be an IP address (memberlist does not resolve names)", m.AdvertiseAddr)
		} else if a.IsUnspecified() {
			p.add("mesh.advertise_addr", "%q: peers cannot reach a wildcard address; give this host's IP or leave it empty", m.AdvertiseAddr)
		}
	}
	checkPort(p, "mesh.advertise_port", m.AdvertisePort)
	if _, err := c.EncryptKeyBytes(); err != nil {
		p.add("mesh.encrypt_key", "%s", strings.TrimPrefix(err.Error(), "configs: mesh.encrypt_key: "))
	}
	checkOptionalPath(p, "mesh.encrypt_key_file", m.EncryptKeyFile)
	if m.EncryptKey != "" && m.EncryptKeyFile != "" {
		p.add("mesh.encrypt_key_file", "set either encrypt_key or encrypt_key_file, not both")
	}
	checkRange(p, "mesh.probe_interval", m.ProbeInterval, 10*time.Millisecond, time.Minute)
	switch {
	case m.ProbeTimeout.Duration <= 0:
		p.add("mesh.probe_timeout", "must be positive")
	case m.ProbeTimeout.Duration >= m.ProbeInterval.Duration:
		p.add("mesh.probe_timeout", "%v must be less than mesh.probe_interval (%v)", m.ProbeTimeout, m.ProbeInterval)
	}
	if m.SuspicionMult < 1 {
		p.add("mesh.suspicion_mult", "%d: must be at least 1", m.SuspicionMult)
	}
	if m.GossipNodes < 1 {
		p.add("mesh.gossip_nodes", "%d: must be at least 1", m.GossipNodes)
	}
	checkPositive(p, "mesh.gossip_interval", m.GossipInterval)
	checkPositive(p, "mesh.push_pull_interval", m.PushPullInterval)
	checkPositive(p, "mesh.rejoin_interval", m.RejoinInterval)
}

func (c *Config) validateAPI(p *problems) {
	a := &c.API
	checkPort(p, "api.port", a.Port)
	if a.AdvertiseURL != "" {
		u, err := url.Parse(a.AdvertiseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("api.advertise_url", "%q: must be an http:// or https:// URL with a host", a.AdvertiseURL)
		}
	}
	if a.SSLEnabled {
		if a.CertFile == "" {
			p.add("api.cert_file", "required when api.ssl_enabled is true")
		}
		if a.KeyFile == "" {
			p.add("api.key_file", "required when api.ssl_enabled is true")
		}
	}
	switch a.VerifyClient {
	case "none":
		if a.ClientCAFile != "" {
			p.add("api.client_ca_file", "set, but api.verify_client is \"none\": set verify_client to \"required\" or \"optional\" to check client certificates")
		}
	case "optional", "required":
		if !a.SSLEnabled {
			p.add("api.verify_client", "%q needs api.ssl_enabled = true", a.VerifyClient)
		}
		if a.ClientCAFile == "" {
			p.add("api.client_ca_file", "required when api.verify_client is %q: the CA that signs client certificates", a.VerifyClient)
		}
	default:
		p.add("api.verify_client", "%q: must be none, optional or required", a.VerifyClient)
	}
	checkOptionalPath(p, "api.client_ca_file", a.ClientCAFile)
	checkOptionalPath(p, "api.ca_file", a.CAFile)
	checkOptionalPath(p, "api.cert_file", a.CertFile)
	checkOptionalPath(p, "api.key_file", a.KeyFile)
	checkOptionalPath(p, "api.auth_token_file", a.AuthTokenFile)
	if a.AuthToken != "" && a.AuthTokenFile != "" {
		p.add("api.auth_token_file", "set either auth_token or auth_token_file, not both")
	}
	for _, t := range []struct{ key, value string }{{"api.auth_token", a.AuthToken}, {"api.read_token", a.ReadToken}} {
		switch {
		case t.value == "":
		case len(t.value) < minTokenLength:
			p.add(t.key, "too short (%d characters): use at least %d, e.g. from `openssl rand -hex 24`", len(t.value), minTokenLength)
		case strings.IndexFunc(t.value, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
			p.add(t.key, "must be printable ASCII without spaces")
		}
	}
	if a.ReadToken != "" && a.ReadToken == a.AuthToken {
		p.add("api.read_token", "must differ from auth_token (the read token must not allow changes)")
	}
}

// minTokenLength: shorter bearer tokens are guessable.
const minTokenLength = 16

func (c *Config) validatePostgreSQL(p *problems) {
	pg := &c.PostgreSQL
	switch {
	case pg.Host == "":
		p.add("postgresql.host", "required: the address peers and clients use to reach PostgreSQL")
	case isWildcard(pg.Host):
		p.add("postgresql.host", "%q is a wildcard, but peers connect to this address; give this host's reachable address", pg.Host)
	}
	checkPort(p, "postgresql.port", pg.Port)
	for _, f := range []struct{ key, value string }{
		{"postgresql.user", pg.User},
		{"postgresql.database", pg.Database},
		{"postgresql.replication_user", pg.ReplicationUser},
		{"postgresql.run_as_user", pg.RunAsUser},
	} {
		if f.value == "" {
			p.add(f.key, "required")
		}
	}
	if pg.Password == "" && pg.ReplicationPassword == "" && (c.Cluster.ExpectNodes > 1 || len(c.Cluster.Join) > 0) {
		p.add("postgresql.password", "required for a cluster of several nodes: standbys authenticate with it (or set postgresql.replication_password)")
	}
	switch pg.SSLMode {
	case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
	default:
		p.add("postgresql.ssl_mode", "%q: must be disable, allow, prefer, require, verify-ca or verify-full", pg.SSLMode)
	}
	checkOptionalPath(p, "postgresql.bin_directory", pg.BinDirectory)
	checkDir(p, "postgresql.socket_directory", pg.SocketDirectory, "required (derived from state_directory)")
	if pg.SocketDirectory != "" && pg.Port > 0 && pg.Port <= 65535 {
		sock := filepath.Join(pg.SocketDirectory, ".s.PGSQL."+strconv.Itoa(pg.Port))
		if len(sock) > maxSocketPath {
			p.add("postgresql.socket_directory", "socket path %s is %d bytes, above the Unix limit of %d: choose a shorter directory", sock, len(sock), maxSocketPath)
		}
	}
	if len(pg.HBANetworks) == 0 {
		p.add("postgresql.hba_networks", "at least one network is required (e.g. \"samenet\" or \"10.0.0.0/8\")")
	}
	for i, n := range pg.HBANetworks {
		if !validHBAAddress(n) {
			p.add(fmt.Sprintf("postgresql.hba_networks[%d]", i), "%q: must be a CIDR, an IP address, samenet, samehost or all", n)
		}
	}
	checkRange(p, "postgresql.health_interval", pg.HealthInterval, 100*time.Millisecond, 10*time.Second)
	checkPositive(p, "postgresql.connect_timeout", pg.ConnectTimeout)
	for name, value := range sortedMap(pg.Parameters) {
		if err := CheckParameter(name, value); err != nil {
			p.add("postgresql.parameters", "%s", strings.TrimPrefix(err.Error(), "configs: "))
		}
	}
}

func (c *Config) validateMonitoring(p *problems) {
	m := &c.Monitoring
	if m.PrometheusEnabled {
		checkPort(p, "monitoring.prometheus_port", m.PrometheusPort)
	}
	if m.MetricsInterval.Duration < time.Second {
		p.add("monitoring.metrics_interval", "%v: must be at least 1s", m.MetricsInterval)
	}
}

func (c *Config) validateLogging(p *problems) {
	if f := c.Logging.Format; f != "json" && f != "text" {
		p.add("logging.format", "%q: must be json or text", f)
	}
	checkOptionalPath(p, "logging.file", c.Logging.File)
}

func (c *Config) validateSecurity(p *problems) {
	s := &c.Security
	if s.RateLimit < 0 {
		p.add("security.rate_limit", "%d: must be 0 (off) or positive", s.RateLimit)
	}
	if s.MaxConnections < 0 {
		p.add("security.max_connections", "%d: must be 0 (no cap) or positive", s.MaxConnections)
	}
	checkAddrs(p, "security.blocked_ips", s.BlockedIPs)
	checkAddrs(p, "security.trusted_proxies", s.TrustedProxies)
	checkOptionalPath(p, "security.audit_log", s.AuditLog)
}

// checkAddrs requires every entry to be an IP address or a CIDR.
func checkAddrs(p *problems, key string, addrs []string) {
	for i, b := range addrs {
		if _, err := netip.ParseAddr(b); err == nil {
			continue
		}
		if _, err := netip.ParsePrefix(b); err == nil {
			continue
		}
		p.add(fmt.Sprintf("%s[%d]", key, i), "%q: must be an IP address or a CIDR", b)
	}
}

// validatePortConflicts rejects two listeners of this node on one port of
// overlapping addresses: the second would fail to bind at start, far from
// the configuration that caused it. Addresses are compared as strings, with
// wildcards overlapping everything; the Prometheus endpoint listens on
// api.host.
func (c *Config) validatePortConflicts(p *problems) {
	type listener struct {
		key, host string
		port      int
	}
	ls := []listener{
		{"api.port", c.API.Host, c.API.Port},
		{"mesh.bind_port", c.Mesh.BindAddr, c.Mesh.BindPort},
		{"postgresql.port", c.PostgreSQL.Host, c.PostgreSQL.Port},
	}
	if c.Monitoring.PrometheusEnabled {
		ls = append(ls, listener{"monitoring.prometheus_port", c.API.Host, c.Monitoring.PrometheusPort})
	}
	for i, a := range ls {
		for _, b := range ls[i+1:] {
			if a.port != b.port || a.port <= 0 || a.port > 65535 {
				continue
			}
			if isWildcard(a.host) || isWildcard(b.host) || a.host == b.host {
				p.add(a.key+" and "+b.key, "both are %d on overlapping addresses (%q and %q): give each its own port", a.port, a.host, b.host)
			}
		}
	}
}

// isWildcard reports whether host means "every address".
func isWildcard(host string) bool {
	switch host {
	case "", "0.0.0.0", "::", "[::]", "*":
		return true
	}
	return false
}

func checkPort(p *problems, key string, port int) {
	if port < 1 || port > 65535 {
		p.add(key, "%d is out of range 1-65535", port)
	}
}

func checkRange(p *problems, key string, d Duration, lo, hi time.Duration) {
	if d.Duration < lo || d.Duration > hi {
		p.add(key, "%v is out of range %v-%v", d, lo, hi)
	}
}

func checkPositive(p *problems, key string, d Duration) {
	if d.Duration <= 0 {
		p.add(key, "%v: must be positive", d)
	}
}

// checkDir requires an absolute path: PostgreSQL and ramd chdir, and a
// relative path would then point elsewhere. FillDerived makes them absolute.
func checkDir(p *problems, key, path, missing string) {
	switch {
	case path == "":
		p.add(key, "%s", missing)
	case !filepath.IsAbs(path):
		p.add(key, "%q: must be an absolute path", path)
	}
}

func checkOptionalPath(p *problems, key, path string) {
	if path != "" && !filepath.IsAbs(path) {
		p.add(key, "%q: must be an absolute path", path)
	}
}

// within reports whether path is dir or lies below it. Both are absolute.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// checkHostPort accepts "host:port" with a non-empty host and a port in
// 1-65535 ("[::1]:7946" for IPv6).
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("must be host:port")
	}
	if host == "" {
		return errors.New("the host is empty")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not in 1-65535", port)
	}
	return nil
}

// validHBAAddress accepts what ramd writes into pg_hba.conf's address field.
func validHBAAddress(s string) bool {
	switch s {
	case "samenet", "samehost", "all":
		return true
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func hasSpace(s string) bool {
	return strings.IndexFunc(s, unicode.IsSpace) >= 0
}

// sortedMap iterates m in key order, so that errors come out in a stable
// order.
func sortedMap[M ~map[string]string](m M) func(yield func(k, v string) bool) {
	return func(yield func(k, v string) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

func (c *Config) validateFailover(p *problems) {
	f := &c.Failover
	checkPositive(p, "failover.lease_ttl", f.LeaseTTL)
	checkPositive(p, "failover.lease_renew_interval", f.LeaseRenewInterval)
	checkPositive(p, "failover.fail_after", f.FailAfter)
	checkPositive(p, "failover.primary_start_timeout", f.PrimaryStartTimeout)
	if f.LeaseTTL.Duration > 0 && f.LeaseRenewInterval.Duration*3 > f.LeaseTTL.Duration {
		p.add("failover.lease_renew_interval", "%v: must be at most lease_ttl / 3 (%v) so that a lost renewal does not end the lease", f.LeaseRenewInterval.Duration, f.LeaseTTL.Duration/3)
	}
	if f.LeaseTTL.Duration > 0 && f.LeaseTTL.Duration < 500*time.Millisecond {
		p.add("failover.lease_ttl", "%v: must be at least 500ms (below that, scheduling delays alone end leases)", f.LeaseTTL.Duration)
	}
	if f.Fencing != "lease" && f.Fencing != "none" {
		p.add("failover.fencing", "%q: must be lease or none", f.Fencing)
	}
	switch f.SynchronousMode {
	case "off", "quorum", "strict":
	default:
		p.add("failover.synchronous_mode", "%q: must be off, quorum or strict", f.SynchronousMode)
	}
	if f.SynchronousMode != "off" && f.Fencing == "none" {
		p.add("failover.synchronous_mode", "%q needs fencing = \"lease\": the lease gate is what holds commits until synchronous_node_count replicas flushed them", f.SynchronousMode)
	}
	if f.SynchronousNodeCount < 1 || f.SynchronousNodeCount > 8 {
		p.add("failover.synchronous_node_count", "%d: must be between 1 and 8", f.SynchronousNodeCount)
	}
	if f.MaximumLagOnFailover < 0 {
		p.add("failover.maximum_lag_on_failover", "%d: must be 0 (no check) or a positive number of bytes", f.MaximumLagOnFailover)
	}
	if f.MaxClockDriftPPM < 1 || f.MaxClockDriftPPM > 100000 {
		p.add("failover.max_clock_drift_ppm", "%d: must be between 1 and 100000 (10%%)", f.MaxClockDriftPPM)
	}
}

func (c *Config) validateBackup(p *problems) {
	dir, data := c.Backup.Directory, c.Cluster.DataDirectory
	checkDir(p, "backup.directory", dir, "required (derived from state_directory)")
	if filepath.IsAbs(dir) && filepath.IsAbs(data) {
		switch {
		case within(dir, data):
			p.add("backup.directory", "%s is inside cluster.data_directory %s: base backups would copy the backups, and a restore would move them aside", dir, data)
		case within(data, dir):
			p.add("backup.directory", "%s contains cluster.data_directory %s: keep them apart", dir, data)
		}
	}
}
