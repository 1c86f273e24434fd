package pg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func testManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	cfg = withDefaults(cfg)
	if err := validate(cfg); err != nil {
		t.Fatal(err)
	}
	return &Manager{cfg: cfg, user: currentUser(), log: cfg.Logger, checkSem: make(chan struct{}, 1)}
}

func baseConfig(dir string) Config {
	return Config{DataDir: filepath.Join(dir, "data"), SocketDir: filepath.Join(dir, "run"), Port: 5433}
}

func TestSlotName(t *testing.T) {
	cases := map[string]string{
		"node1":                 "ramd_node1",
		"Node-2":                "ramd_node_2",
		"db.eu":                 "ramd_db_eu",
		strings.Repeat("x", 80): "ramd_" + strings.Repeat("x", 58),
	}
	for in, want := range cases {
		got := SlotName(in)
		if got != want {
			t.Errorf("SlotName(%q) = %q, want %q", in, got, want)
		}
		if err := validSlot(got); err != nil {
			t.Errorf("SlotName(%q) is not a valid slot: %v", in, err)
		}
	}
	if validSlot("Bad-Slot") == nil {
		t.Error("validSlot accepted upper case and '-'")
	}
}

func TestConninfoQuoteRoundTrip(t *testing.T) {
	for _, pw := range []string{"plain", `it's`, `back\slash`, `both\'`, "sp ace", `"dq"`} {
		cfg, err := pgconn.ParseConfig("host=/tmp user=u password=" + conninfoQuote(pw))
		if err != nil {
			t.Fatalf("parse %q: %v", pw, err)
		}
		if cfg.Password != pw {
			t.Errorf("password %q came back as %q", pw, cfg.Password)
		}
	}
}

func TestConfQuote(t *testing.T) {
	if got := confQuote(`a'b\c`); got != `'a''b\\c'` {
		t.Errorf("confQuote = %s", got)
	}
}

func TestRenderManagedConf(t *testing.T) {
	cfg := baseConfig(t.TempDir())
	cfg.Host = "10.0.0.5"
	cfg.ReplicationPassword = `r'p`
	cfg.Parameters = map[string]string{"work_mem": "8MB", "shared_buffers": "64MB"}
	m := testManager(t, cfg)
	conf := string(m.renderManagedConf(m.upstreamLines(Endpoint{"10.0.0.1", 5432}, "ramd_n2", "n2")))
	for _, want := range []string{
		"listen_addresses = '10.0.0.5'\n", "port = 5433\n", "unix_socket_directories = '" + cfg.SocketDir + "'\n",
		"wal_level = replica\n", "hot_standby = on\n", "wal_log_hints = on\n", "max_wal_senders = 10\n",
		"max_replication_slots = 10\n", "wal_keep_size = '256MB'\n", "hot_standby_feedback = on\n",
		"password_encryption = 'scram-sha-256'\n", "logging_collector = off\n",
		`primary_conninfo = 'host=''10.0.0.1'' port=5432 user=''replicator'' password=''r\\''p'' application_name=''n2''`,
		"primary_slot_name = 'ramd_n2'\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("managed conf lacks %q:\n%s", want, conf)
		}
	}
	// parameters come last, sorted, so they override ramd's defaults
	if i, j, k := strings.Index(conf, "logging_collector"), strings.Index(conf, "shared_buffers"), strings.Index(conf, "work_mem"); !(i < j && j < k) {
		t.Errorf("parameters not last and sorted:\n%s", conf)
	}
}

func TestRenderHBA(t *testing.T) {
	cfg := baseConfig(t.TempDir())
	cfg.HBANetworks = []string{"samenet", "10.0.0.0/8", "127.0.0.1/32"}
	m := testManager(t, cfg)
	hba := string(m.renderHBA())
	var trust []string
	for _, l := range strings.Split(hba, "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), "trust") {
			trust = append(trust, l)
		}
	}
	if len(trust) != 2 {
		t.Errorf("want trust for the socket's normal and replication connections only, got %q", trust)
	}
	for _, l := range trust {
		if !strings.HasPrefix(l, "local") {
			t.Errorf("trust must be on the socket only, got %q", l)
		}
	}
	for _, n := range []string{"samenet", "10.0.0.0/8", "127.0.0.1/32", "::1/128"} {
		for _, db := range []string{"all          all", "replication  replicator"} {
			want := "host    " + db + "  " + n + "  scram-sha-256\n"
			if strings.Count(hba, want) != 1 {
				t.Errorf("want exactly one %q in:\n%s", want, hba)
			}
		}
	}
}

func TestValidateRejects(t *testing.T) {
	dir := t.TempDir()
	bad := map[string]func(*Config){
		"relative data dir": func(c *Config) { c.DataDir = "data" },
		"no socket dir":     func(c *Config) { c.SocketDir = "" },
		"port":              func(c *Config) { c.Port = 0 },
		"long socket path":  func(c *Config) { c.SocketDir = "/" + strings.Repeat("s", 100) },
		"reserved param":    func(c *Config) { c.Parameters = map[string]string{"port": "1"} },
		"param name":        func(c *Config) { c.Parameters = map[string]string{"a b": "1"} },
		"param newline":     func(c *Config) { c.Parameters = map[string]string{"work_mem": "1\nport=2"} },
		"hba network":       func(c *Config) { c.HBANetworks = []string{"10.0.0.0/99"} },
		"password newline":  func(c *Config) { c.SuperuserPassword = "a\nb" },
		"quoted role":       func(c *Config) { c.ReplicationUser = `re"pl` },
	}
	for name, mutate := range bad {
		cfg := baseConfig(dir)
		mutate(&cfg)
		if err := validate(withDefaults(cfg)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "pg: ") {
			t.Errorf("%s: error not prefixed: %v", name, err)
		}
	}
}

func TestDropAutoConfUpstream(t *testing.T) {
	m := testManager(t, baseConfig(t.TempDir()))
	if err := os.MkdirAll(m.cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	auto := "# Do not edit this file manually!\nwork_mem = '4MB'\nprimary_conninfo = 'host=x'\nprimary_slot_name = 's'\n"
	if err := os.WriteFile(m.dataPath("postgresql.auto.conf"), []byte(auto), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.dropAutoConfUpstream(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(m.dataPath("postgresql.auto.conf"))
	if string(got) != "# Do not edit this file manually!\nwork_mem = '4MB'\n" {
		t.Errorf("auto.conf = %q", got)
	}
}

func TestMoveAside(t *testing.T) {
	m := testManager(t, baseConfig(t.TempDir()))
	// missing and empty directories stay put: nothing to preserve
	if to, err := m.moveAside("failed"); to != "" || err != nil {
		t.Fatalf("missing dir: moved to %q, %v", to, err)
	}
	if err := os.MkdirAll(m.cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if to, err := m.moveAside("failed"); to != "" || err != nil {
		t.Fatalf("empty dir: moved to %q, %v", to, err)
	}
	// a partial copy is renamed, never deleted, twice in one second too
	for i := 0; i < 2; i++ {
		if err := os.MkdirAll(m.cfg.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m.dataPath("PG_VERSION"), []byte("15\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		to, err := m.moveAside("failed")
		if err != nil || !strings.HasPrefix(to, m.cfg.DataDir+".failed-") {
			t.Fatalf("partial dir: moved to %q, %v", to, err)
		}
		if _, err := os.Stat(filepath.Join(to, "PG_VERSION")); err != nil {
			t.Errorf("moved dir lost its content: %v", err)
		}
		if _, err := os.Stat(m.cfg.DataDir); !os.IsNotExist(err) {
			t.Errorf("data dir still there after move: %v", err)
		}
	}
}

func TestFindBinDirBogus(t *testing.T) {
	_, err := FindBinDir("/nonexistent/ramd/bin")
	if err == nil {
		t.Fatal("FindBinDir accepted a bogus directory")
	}
	for _, want := range []string{"pg: ", "/nonexistent/ramd/bin", "apt-get install postgresql-15", "[postgresql] bin_directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStateString(t *testing.T) {
	if StateEmpty.String() != "empty" || StateInitialized.String() != "initialized" {
		t.Error("State.String")
	}
}
