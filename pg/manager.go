package pg

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config describes the local PostgreSQL server. Zero values get the
// defaults noted on each field.
type Config struct {
	BinDir              string            // "" = auto: FindBinDir("")
	DataDir             string            // absolute; required
	Host                string            // listen_addresses and the address peers use; "" = "127.0.0.1"
	Port                int               // required
	SocketDir           string            // unix_socket_directories (absolute, required); created if missing (owned by the run-as user)
	Superuser           string            // "" = "postgres"
	SuperuserPassword   string            // set at bootstrap; needed by peers to create their slot
	Database            string            // "" = "postgres"
	ReplicationUser     string            // "" = "replicator"
	ReplicationPassword string            // "" = SuperuserPassword
	Parameters          map[string]string // extra postgresql.conf settings, written last
	HBANetworks         []string          // e.g. ["samenet"] or CIDRs; loopback is always added
	RunAsUser           string            // OS user when we are root; "" = "postgres"
	ConnectTimeout      time.Duration     // bounds every connection and Check; 0 = 3s
	Logger              *slog.Logger      // nil = slog.Default()

	// SSLMode is the libpq sslmode of connections to peers (slot creation,
	// pg_basebackup, primary_conninfo). "" = libpq's default (prefer).
	SSLMode string
	// Gate, when set, is the managed synchronous-replication setup that
	// makes commits on a primary wait for the daemon's lease gate
	// (pg/gate.PrimarySettings): written into postgresql.ramd.conf on
	// every node (standbys ignore it, a promoted standby has it at once).
	Gate map[string]string
	// StartTimeout bounds pg_ctl start/stop -w (crash recovery can be long);
	// the context's deadline applies when sooner. 0 = 60s.
	StartTimeout time.Duration
}

// State is what a data directory holds.
type State int

const (
	// StateEmpty: the data directory is missing or empty.
	StateEmpty State = iota
	// StateInitialized: the data directory holds a cluster (PG_VERSION).
	StateInitialized
)

func (s State) String() string {
	switch s {
	case StateEmpty:
		return "empty"
	case StateInitialized:
		return "initialized"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// StopMode is pg_ctl's shutdown mode.
type StopMode string

const (
	// StopSmart waits for clients to disconnect.
	StopSmart StopMode = "smart"
	// StopFast disconnects clients and shuts down cleanly (a checkpoint).
	StopFast StopMode = "fast"
	// StopImmediate aborts without a checkpoint; the next start recovers.
	StopImmediate StopMode = "immediate"
)

// Endpoint is a PostgreSQL server reachable over TCP.
type Endpoint struct {
	Host string
	Port int
}

func (e Endpoint) String() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

func (e Endpoint) validate() error {
	if e.Host == "" || hasControl(e.Host) {
		return fmt.Errorf("pg: invalid upstream host %q", e.Host)
	}
	if e.Port < 1 || e.Port > 65535 {
		return fmt.Errorf("pg: invalid upstream port %d", e.Port)
	}
	return nil
}

// Manager runs and inspects the local PostgreSQL server. Lifecycle calls
// (InitPrimary, CloneFrom, Start, Stop, SetPrimary) are serialized; Check
// may run concurrently with them.
type Manager struct {
	cfg  Config
	user runAs
	log  *slog.Logger

	// recvTLI is the highest timeline a WAL receiver reported (see
	// stickTimeline).
	recvTLI atomic.Uint32

	// opMu serializes lifecycle operations.
	opMu sync.Mutex
	// checkSem guards conn; a channel so that Check can give up waiting
	// when its timeout expires.
	checkSem chan struct{}
	conn     *pgx.Conn
	// logMark is the size of the server log when the server was last
	// started by us: WaitStreaming looks only at what was logged since.
	logMark atomic.Int64
}

// New validates cfg, applies defaults and resolves the binaries and the
// run-as user. It touches nothing on disk.
func New(cfg Config) (*Manager, error) {
	cfg = withDefaults(cfg)
	if err := validate(cfg); err != nil {
		return nil, err
	}
	bin, err := FindBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	if err := checkBinaries(bin); err != nil {
		return nil, err
	}
	cfg.BinDir = bin
	u, err := resolveRunAs(cfg.RunAsUser)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:      cfg,
		user:     u,
		log:      cfg.Logger.With("component", "pg"),
		checkSem: make(chan struct{}, 1),
	}
	if cfg.SuperuserPassword == "" {
		m.log.Warn("no superuser password: peers cannot clone from or connect to this node over TCP")
	}
	return m, nil
}

func withDefaults(cfg Config) Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.Host, "127.0.0.1")
	def(&cfg.Superuser, "postgres")
	def(&cfg.Database, "postgres")
	def(&cfg.ReplicationUser, "replicator")
	def(&cfg.ReplicationPassword, cfg.SuperuserPassword)
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 3 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DataDir != "" {
		cfg.DataDir = filepath.Clean(cfg.DataDir)
	}
	if cfg.SocketDir != "" {
		cfg.SocketDir = filepath.Clean(cfg.SocketDir)
	}
	return cfg
}

var (
	paramKeyRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)
	hbaNetworkRe = regexp.MustCompile(`^[^\s"#,]+$`)
	slotNameRe   = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
)

// maxSocketPath is sizeof(sun_path) minus the terminating NUL.
const maxSocketPath = 107

func validate(cfg Config) error {
	if cfg.DataDir == "" || !filepath.IsAbs(cfg.DataDir) {
		return fmt.Errorf("pg: data directory must be an absolute path, got %q", cfg.DataDir)
	}
	if cfg.SocketDir == "" || !filepath.IsAbs(cfg.SocketDir) {
		return fmt.Errorf("pg: socket directory must be an absolute path, got %q", cfg.SocketDir)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return fmt.Errorf("pg: port %d out of range 1-65535", cfg.Port)
	}
	if sock := filepath.Join(cfg.SocketDir, ".s.PGSQL."+strconv.Itoa(cfg.Port)); len(sock) > maxSocketPath {
		return fmt.Errorf("pg: socket path %s is longer than %d bytes; choose a shorter socket directory", sock, maxSocketPath)
	}
	if hasControl(cfg.Host) || hasControl(cfg.Database) || hasControl(cfg.SSLMode) {
		return fmt.Errorf("pg: host, database and ssl mode must not contain control characters")
	}
	for _, r := range []string{cfg.Superuser, cfg.ReplicationUser} {
		if hasControl(r) || strings.Contains(r, `"`) || len(r) > 63 {
			return fmt.Errorf("pg: invalid role name %q (at most 63 bytes, no quotes or control characters)", r)
		}
	}
	if hasControl(cfg.SuperuserPassword) || hasControl(cfg.ReplicationPassword) {
		return fmt.Errorf("pg: passwords must not contain control characters (initdb reads one line)")
	}
	for _, n := range cfg.HBANetworks {
		if !hbaNetworkRe.MatchString(n) {
			return fmt.Errorf("pg: invalid hba network %q", n)
		}
		if strings.Contains(n, "/") {
			if _, _, err := net.ParseCIDR(n); err != nil {
				return fmt.Errorf("pg: invalid hba network %q: %w", n, err)
			}
		}
	}
	for k, v := range cfg.Parameters {
		if !paramKeyRe.MatchString(k) {
			return fmt.Errorf("pg: invalid parameter name %q", k)
		}
		if why, ok := reservedParameters[strings.ToLower(k)]; ok {
			return fmt.Errorf("pg: parameter %q cannot be set in [postgresql] parameters: %s", k, why)
		}
		if hasControl(v) {
			return fmt.Errorf("pg: parameter %q: value must not contain control characters", k)
		}
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// SlotName is the replication slot a node streams from: "ramd_" + the node
// name, lowercased, with anything outside [a-z0-9_] replaced by '_' and cut
// to PostgreSQL's 63-byte limit, so any configured node name yields a
// valid slot.
func SlotName(nodeName string) string {
	var b strings.Builder
	b.WriteString("ramd_")
	for _, r := range strings.ToLower(nodeName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

func validSlot(slot string) error {
	if !slotNameRe.MatchString(slot) {
		return fmt.Errorf("pg: invalid replication slot name %q (want [a-z0-9_], at most 63 bytes; see SlotName)", slot)
	}
	return nil
}

func validAppName(app string) error {
	if app == "" || hasControl(app) || len(app) > 63 {
		return fmt.Errorf("pg: invalid application name %q", app)
	}
	return nil
}

// DataDir is the configured data directory.
func (m *Manager) DataDir() string { return m.cfg.DataDir }

// Config is the configuration with defaults applied and the bin dir
// resolved.
func (m *Manager) Config() Config { return m.cfg }

// DataState tells whether the data directory is empty (or missing) or
// holds a cluster. A non-empty directory without PG_VERSION, or a cluster
// owned by another user than the one PostgreSQL runs as, is an error: ramd
// must not touch either.
func (m *Manager) DataState() (State, error) {
	dir := m.cfg.DataDir
	fi, err := os.Stat(dir)
	if os.IsNotExist(err) {
		return StateEmpty, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pg: data directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return 0, fmt.Errorf("pg: data directory %s is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("pg: data directory %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return StateEmpty, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		return 0, fmt.Errorf("pg: data directory %s is not empty but is not a PostgreSQL data directory (no PG_VERSION; found %s); move it away or point data_directory elsewhere",
			dir, sampleNames(entries, 3))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != m.user.uid {
		return 0, fmt.Errorf("pg: data directory %s is owned by %s, but PostgreSQL runs as %s; chown -R it or set [postgresql] run_as_user",
			dir, userName(int(st.Uid)), userName(m.user.uid))
	}
	return StateInitialized, nil
}

func sampleNames(entries []os.DirEntry, n int) string {
	var names []string
	for i, e := range entries {
		if i == n {
			names = append(names, "...")
			break
		}
		names = append(names, e.Name())
	}
	return strings.Join(names, ", ")
}

// ConnString is the superuser DSN over the unix socket (trust), for local
// SQL.
func (m *Manager) ConnString() string {
	return strings.Join([]string{
		"host=" + conninfoQuote(m.cfg.SocketDir),
		"port=" + strconv.Itoa(m.cfg.Port),
		"user=" + conninfoQuote(m.cfg.Superuser),
		"dbname=" + conninfoQuote(m.cfg.Database),
		"sslmode=disable",
		"application_name=ramd",
		"connect_timeout=" + strconv.Itoa(m.connectTimeoutSeconds()),
	}, " ")
}

// connectTimeoutSeconds is ConnectTimeout in libpq's whole seconds.
func (m *Manager) connectTimeoutSeconds() int {
	return max(1, int(math.Ceil(m.cfg.ConnectTimeout.Seconds())))
}

// Close closes the cached health-check connection.
func (m *Manager) Close() {
	m.checkSem <- struct{}{}
	defer func() { <-m.checkSem }()
	m.closeConnLocked()
}

func (m *Manager) closeConnLocked() {
	if m.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = m.conn.Close(ctx)
	m.conn = nil
}
