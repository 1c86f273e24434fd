package pg

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	managedConfName = "postgresql.ramd.conf"
	includeLine     = "include_if_exists = '" + managedConfName + "'"
	logDirName      = "log"
	logFileName     = "postgresql.log"
)

// upstreamKeys are the settings SetPrimary owns. They live in the managed
// file and are carried over when Start rewrites it.
var upstreamKeys = []string{"primary_conninfo", "primary_slot_name"}

// reservedParameters cannot be set through Config.Parameters because ramd
// depends on their value (it connects to the socket, peers to the port,
// SetPrimary owns the upstream).
var reservedParameters = map[string]string{
	"port":                    "use [postgresql] port",
	"listen_addresses":        "use [postgresql] host",
	"unix_socket_directories": "use [postgresql] socket_directory",
	"unix_socket_permissions": "the socket is ramd's trusted channel",
	"primary_conninfo":        "ramd sets the upstream",
	"primary_slot_name":       "ramd sets the upstream",
	"data_directory":          "use [cluster] data_directory",
	"config_file":             "ramd owns the configuration layout",
	"hba_file":                "ramd owns pg_hba.conf",
	"include":                 "ramd owns the configuration layout",
	"include_if_exists":       "ramd owns the configuration layout",
	"include_dir":             "ramd owns the configuration layout",
}

func (m *Manager) dataPath(name string) string { return filepath.Join(m.cfg.DataDir, name) }

// LogFile is where the server log goes (pg_ctl -l).
func (m *Manager) LogFile() string {
	return filepath.Join(m.cfg.DataDir, logDirName, logFileName)
}

// renderManagedConf is postgresql.ramd.conf: ramd's settings, then the
// upstream lines (verbatim, already quoted), then the operator's
// parameters last so they can tune anything not reserved.
func (m *Manager) renderManagedConf(upstream []string) []byte {
	var b bytes.Buffer
	b.WriteString("# Managed by ramd: rewritten on every start; edits are lost.\n")
	b.WriteString("# Set extra settings in ramd's [postgresql] parameters instead.\n")
	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	kv("listen_addresses", confQuote(m.cfg.Host))
	kv("port", strconv.Itoa(m.cfg.Port))
	kv("unix_socket_directories", confQuote(m.cfg.SocketDir))
	// local connections are trusted: only the owner (and root) may connect.
	kv("unix_socket_permissions", "0700")
	kv("wal_level", "replica")
	kv("hot_standby", "on")
	// pg_rewind needs hint bits WAL-logged (or data checksums).
	kv("wal_log_hints", "on")
	kv("max_wal_senders", "10")
	kv("max_replication_slots", "10")
	// pg_rewind needs the WAL since the timelines diverged.
	kv("wal_keep_size", "'256MB'")
	kv("hot_standby_feedback", "on")
	kv("password_encryption", "'scram-sha-256'")
	// stderr goes to log/postgresql.log through pg_ctl -l.
	kv("logging_collector", "off")
	if len(m.cfg.Gate) > 0 {
		b.WriteString("# lease gate: commits wait for the ramd daemon's confirmation\n")
		keys := make([]string, 0, len(m.cfg.Gate))
		for k := range m.cfg.Gate {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kv(k, confQuote(m.cfg.Gate[k]))
		}
	}
	if len(upstream) > 0 {
		b.WriteString("# upstream (set by ramd when cloning or on failover)\n")
		for _, l := range upstream {
			b.WriteString(l + "\n")
		}
	}
	if len(m.cfg.Parameters) > 0 {
		b.WriteString("# [postgresql] parameters\n")
		keys := make([]string, 0, len(m.cfg.Parameters))
		for k := range m.cfg.Parameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kv(k, confQuote(m.cfg.Parameters[k]))
		}
	}
	return b.Bytes()
}

// upstreamLines renders primary_conninfo and primary_slot_name for src.
// The password is inline: the file is 0600 inside a 0700 data directory,
// and a passfile elsewhere would be one more thing to lose on a rebuild.
func (m *Manager) upstreamLines(src Endpoint, slot, appName string) []string {
	ci := []string{
		"host=" + conninfoQuote(src.Host),
		"port=" + strconv.Itoa(src.Port),
		"user=" + conninfoQuote(m.cfg.ReplicationUser),
		"password=" + conninfoQuote(m.cfg.ReplicationPassword),
		"application_name=" + conninfoQuote(appName),
		// A dead primary must not hang the WAL receiver for a TCP timeout.
		"connect_timeout=" + strconv.Itoa(m.connectTimeoutSeconds()),
	}
	if m.cfg.SSLMode != "" {
		ci = append(ci, "sslmode="+conninfoQuote(m.cfg.SSLMode))
	}
	return []string{
		"primary_conninfo = " + confQuote(strings.Join(ci, " ")),
		"primary_slot_name = " + confQuote(slot),
	}
}

// readUpstream returns the upstream lines of the current managed file, so
// that Start keeps what SetPrimary or CloneFrom wrote.
func (m *Manager) readUpstream() ([]string, error) {
	data, err := os.ReadFile(m.dataPath(managedConfName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pg: read %s: %w", managedConfName, err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if isUpstreamLine(sc.Text()) {
			lines = append(lines, sc.Text())
		}
	}
	return lines, nil
}

func isUpstreamLine(line string) bool {
	k, _, ok := strings.Cut(line, "=")
	if !ok {
		return false
	}
	k = strings.TrimSpace(k)
	for _, u := range upstreamKeys {
		if k == u {
			return true
		}
	}
	return false
}

// writeManagedConf writes postgresql.ramd.conf with the given upstream
// (nil: keep the current one) and pg_hba.conf, and makes sure
// postgresql.conf includes the former.
func (m *Manager) writeManagedConf(upstream []string) error {
	if upstream == nil {
		var err error
		if upstream, err = m.readUpstream(); err != nil {
			return err
		}
	}
	if err := m.ensureInclude(); err != nil {
		return err
	}
	if err := m.user.writeFileOwned(m.dataPath(managedConfName), m.renderManagedConf(upstream), 0o600); err != nil {
		return err
	}
	if len(upstream) > 0 {
		if err := m.dropAutoConfUpstream(); err != nil {
			return err
		}
	}
	return m.user.writeFileOwned(m.dataPath("pg_hba.conf"), m.renderHBA(), 0o600)
}

// ensureInclude appends the include line to postgresql.conf once. A clone
// inherits it from its source, so it is looked for before appending.
func (m *Manager) ensureInclude() error {
	path := m.dataPath("postgresql.conf")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("pg: read postgresql.conf: %w", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == includeLine {
			return nil
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pg: append to postgresql.conf: %w", err)
	}
	defer f.Close()
	text := "\n# Added by ramd: the settings ramd manages (rewritten on every start).\n" + includeLine + "\n"
	if _, err := f.WriteString(text); err != nil {
		return fmt.Errorf("pg: append to postgresql.conf: %w", err)
	}
	return nil
}

// dropAutoConfUpstream removes primary_conninfo/primary_slot_name from
// postgresql.auto.conf (pg_basebackup -R writes them there, and ALTER
// SYSTEM could): that file is read after ours and would silently override
// SetPrimary.
func (m *Manager) dropAutoConfUpstream() error {
	path := m.dataPath("postgresql.auto.conf")
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pg: read postgresql.auto.conf: %w", err)
	}
	var out []string
	changed := false
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if isUpstreamLine(l) {
			changed = true
			continue
		}
		out = append(out, l)
	}
	if !changed {
		return nil
	}
	return m.user.writeFileOwned(path, []byte(strings.Join(out, "")), 0o600)
}

// renderHBA is pg_hba.conf: trust on the (0700) socket only, scram for
// every network, loopback included.
func (m *Manager) renderHBA() []byte {
	var b bytes.Buffer
	b.WriteString("# Managed by ramd: rewritten on every start; edits are lost.\n")
	b.WriteString("# TYPE  DATABASE     USER  ADDRESS  METHOD\n")
	b.WriteString("local   all          all            trust\n")
	// The daemon's lease gate streams over the socket (pg/gate).
	b.WriteString("local   replication  all            trust\n")
	repl := hbaQuote(m.cfg.ReplicationUser)
	for _, n := range m.hbaNetworks() {
		fmt.Fprintf(&b, "host    all          all  %s  scram-sha-256\n", n)
		fmt.Fprintf(&b, "host    replication  %s  %s  scram-sha-256\n", repl, n)
	}
	return b.Bytes()
}

// hbaNetworks is Config.HBANetworks plus loopback, without duplicates.
func (m *Manager) hbaNetworks() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range append(append([]string{}, m.cfg.HBANetworks...), "127.0.0.1/32", "::1/128") {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// confQuote renders a postgresql.conf string literal. Inside quotes the
// GUC parser reads a doubled quote as one quote and processes backslash
// escapes.
func confQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// conninfoQuote renders a libpq keyword/value value.
func conninfoQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// hbaQuote double-quotes a role name when pg_hba.conf would otherwise read
// it as a keyword or split it.
func hbaQuote(s string) string {
	switch s {
	case "all", "sameuser", "samerole", "samegroup", "replication":
		return `"` + s + `"`
	}
	// New rejects '"' in role names: pg_hba.conf cannot escape it.
	if strings.ContainsAny(s, " \t,#+@") {
		return `"` + s + `"`
	}
	return s
}
