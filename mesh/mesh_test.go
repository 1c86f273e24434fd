package mesh

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The tests below run real memberlists on 127.0.0.1 in one process, with
// the failure-detection timings the daemon uses by default, and poll with
// deadlines (no fixed sleeps except where absence must be shown).
// MESH_TEST_LOG=1 prints the meshes' debug logs.

const testDeadline = 10 * time.Second

func testLogger(name string) *slog.Logger {
	if os.Getenv("MESH_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).
		With("component", "mesh", "mesh", name)
}

// newTestMesh creates (and registers the shutdown of) a mesh with fast
// rejoin/push-pull and the default failure-detection timings.
func newTestMesh(t *testing.T, name string, mut func(*Config)) *Mesh {
	t.Helper()
	cfg := Config{
		NodeName:            name,
		ClusterName:         "test",
		BindAddr:            "127.0.0.1",
		RejoinInterval:      200 * time.Millisecond,
		PushPullInterval:    time.Second,
		RefreshInterval:     500 * time.Millisecond,
		DeadNodeReclaimTime: 500 * time.Millisecond,
		Logger:              testLogger(name),
	}
	if mut != nil {
		mut(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

func seeds(addrs ...string) func(*Config) {
	return func(c *Config) { c.Seeds = addrs }
}

// startCluster starts n meshes named n1..nN, each seeded with n1, and
// publishes a state on each (NodeID i).
func startCluster(t *testing.T, n int, mut func(*Config)) []*Mesh {
	t.Helper()
	var ms []*Mesh
	for i := 1; i <= n; i++ {
		m := newTestMesh(t, "n"+strconv.Itoa(i), func(c *Config) {
			if i > 1 {
				c.Seeds = []string{ms[0].LocalAddr()}
			}
			c.NodeID = i
			if mut != nil {
				mut(c)
			}
		})
		m.SetLocal(NodeState{NodeID: i, Role: RoleReplica, DataState: DataReady, APIURL: "http://n" + strconv.Itoa(i)})
		m.Start()
		ms = append(ms, m)
	}
	for _, m := range ms {
		waitMembers(t, m, names(ms), Alive)
	}
	return ms
}

func names(ms []*Mesh) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.cfg.NodeName)
	}
	return out
}

// eventually polls cond every 5 ms until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s: %s", testDeadline, what, detail)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func liveness(m *Mesh, name string) Liveness {
	for _, mb := range m.Members() {
		if mb.State.Name == name {
			return mb.Liveness
		}
	}
	return ""
}

func memberState(m *Mesh, name string) (NodeState, bool) {
	for _, mb := range m.Members() {
		if mb.State.Name == name {
			return mb.State, true
		}
	}
	return NodeState{}, false
}

// waitMembers waits until m lists every name with liveness l.
func waitMembers(t *testing.T, m *Mesh, want []string, l Liveness) {
	t.Helper()
	eventually(t, m.cfg.NodeName+" sees "+fmt.Sprint(want)+" "+string(l), func() (bool, string) {
		for _, n := range want {
			if got := liveness(m, n); got != l {
				return false, fmt.Sprintf("%s is %q; members %+v", n, got, m.Members())
			}
		}
		return true, ""
	})
}

// assertNeverSees checks for a while that m does not list name.
func assertNeverSees(t *testing.T, m *Mesh, name string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if l := liveness(m, name); l != "" {
			t.Fatalf("%s lists %s as %s", m.cfg.NodeName, name, l)
		}
	}
}

func TestClusterFormsAndSharesState(t *testing.T) {
	ms := startCluster(t, 3, nil)

	for _, m := range ms {
		got := m.Members()
		if len(got) != 3 || m.NumAlive() != 3 {
			t.Fatalf("%s: %d members, NumAlive %d", m.cfg.NodeName, len(got), m.NumAlive())
		}
		for i, mb := range got {
			// Sorted by NodeID; everyone's state (not only metadata) arrived.
			if mb.State.NodeID != i+1 || mb.State.Name != "n"+strconv.Itoa(i+1) {
				t.Fatalf("%s: member %d is %+v", m.cfg.NodeName, i, mb.State)
			}
			if mb.Self != (mb.State.Name == m.cfg.NodeName) || mb.Addr == "" || mb.LastSeen.IsZero() {
				t.Fatalf("%s: member %+v", m.cfg.NodeName, mb)
			}
		}
	}
	eventually(t, "states everywhere", func() (bool, string) {
		for _, m := range ms {
			for _, o := range ms {
				s, _ := memberState(m, o.cfg.NodeName)
				if s.Version != o.Local().Version || s.DataState != DataReady {
					return false, fmt.Sprintf("%s has %s at %+v", m.cfg.NodeName, o.cfg.NodeName, s)
				}
			}
		}
		return true, ""
	})

	// A change on one node reaches the others by broadcast.
	ch, cancel := ms[0].Subscribe()
	defer cancel()
	src := ms[1]
	next := src.Local()
	next.LSN = 0xABCDEF
	start := time.Now()
	src.SetLocal(next)
	want := src.Local()
	if want.Version < 2 || want.StartedAt == 0 {
		t.Fatalf("local after SetLocal: %+v", want)
	}
	for _, m := range []*Mesh{ms[0], ms[2]} {
		eventually(t, "new state on "+m.cfg.NodeName, func() (bool, string) {
			s, _ := memberState(m, src.cfg.NodeName)
			return s.LSN == 0xABCDEF && s.Version == want.Version, fmt.Sprintf("%+v", s)
		})
		t.Logf("state change reached %s in %v", m.cfg.NodeName, time.Since(start).Round(time.Millisecond))
	}
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("no change notification")
	}
	if mb, ok := ms[0].Member(2); !ok || mb.State.Name != "n2" || mb.State.LSN != 0xABCDEF {
		t.Fatalf("Member(2) = %+v, %v", mb, ok)
	}
	if _, ok := ms[0].Member(99); ok {
		t.Fatal("Member(99) found")
	}
	st := ms[0].Stats()
	if st.MessagesReceived == 0 || st.StatesApplied == 0 || st.BroadcastsQueued == 0 || st.MessagesDropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLabelIsolation(t *testing.T) {
	ms := startCluster(t, 2, nil)
	other := newTestMesh(t, "intruder", func(c *Config) {
		c.ClusterName = "other-cluster"
		c.Seeds = []string{ms[0].LocalAddr()}
	})
	other.SetLocal(NodeState{NodeID: 9})
	other.Start()

	assertNeverSees(t, ms[0], "intruder", 1500*time.Millisecond)
	for _, m := range ms {
		if l := liveness(m, "intruder"); l != "" {
			t.Fatalf("%s admitted the intruder (%s)", m.cfg.NodeName, l)
		}
	}
	if got := other.Members(); len(got) != 1 || !got[0].Self {
		t.Fatalf("intruder sees %+v", got)
	}
	if st := other.Stats(); st.StatesApplied != 0 {
		t.Fatalf("intruder applied states: %+v", st)
	}
}

func TestEncryption(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	ms := startCluster(t, 3, func(c *Config) { c.EncryptKey = key })

	wrong := newTestMesh(t, "wrong-key", func(c *Config) {
		c.EncryptKey = bytes.Repeat([]byte{2}, 32)
		c.Seeds = []string{ms[0].LocalAddr()}
	})
	none := newTestMesh(t, "no-key", seeds(ms[1].LocalAddr()))
	wrong.Start()
	none.Start()

	assertNeverSees(t, ms[0], "wrong-key", 1500*time.Millisecond)
	for _, m := range ms {
		for _, intruder := range []string{"wrong-key", "no-key"} {
			if l := liveness(m, intruder); l != "" {
				t.Fatalf("%s admitted %s (%s)", m.cfg.NodeName, intruder, l)
			}
		}
		if m.NumAlive() != 3 {
			t.Fatalf("%s: NumAlive %d", m.cfg.NodeName, m.NumAlive())
		}
	}
	for _, intruder := range []*Mesh{wrong, none} {
		if n := len(intruder.Members()); n != 1 {
			t.Fatalf("%s sees %d members", intruder.cfg.NodeName, n)
		}
	}
}

func TestGracefulLeave(t *testing.T) {
	ms := startCluster(t, 3, nil)
	leaver := ms[2]
	start := time.Now()
	if err := leaver.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := leaver.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:2] {
		waitMembers(t, m, []string{"n3"}, Left)
		t.Logf("%s sees n3 left after %v", m.cfg.NodeName, time.Since(start).Round(time.Millisecond))
		if m.NumAlive() != 2 {
			t.Fatalf("NumAlive %d", m.NumAlive())
		}
		// The last state stays visible.
		if s, ok := memberState(m, "n3"); !ok || s.NodeID != 3 {
			t.Fatalf("left member's state: %+v", s)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("leave took %v to be seen, want well under the failure timeout", d)
	}
}

// TestCrashDetection measures, with the daemon's default timings, the time
// from a node stopping without Leave to every peer showing it dead.
func TestCrashDetection(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(strconv.Itoa(n)+" nodes", func(t *testing.T) {
			ms := startCluster(t, n, nil)
			victim := ms[n-1]
			name := victim.cfg.NodeName
			observers := ms[:n-1]

			type seen struct{ suspect, dead time.Duration }
			results := make([]seen, len(observers))
			start := time.Now()
			_ = victim.Shutdown()
			var wg sync.WaitGroup
			for i, m := range observers {
				wg.Go(func() {
					for time.Since(start) < testDeadline {
						switch liveness(m, name) {
						case Suspect:
							if results[i].suspect == 0 {
								results[i].suspect = time.Since(start)
							}
						case Dead:
							results[i].dead = time.Since(start)
							return
						case Left:
							results[i].dead = -1
							return
						}
						time.Sleep(2 * time.Millisecond)
					}
				})
			}
			wg.Wait()
			var worst time.Duration
			sawSuspect := false
			for i, r := range results {
				t.Logf("%s: suspect after %v, dead after %v", observers[i].cfg.NodeName,
					r.suspect.Round(time.Millisecond), r.dead.Round(time.Millisecond))
				switch {
				case r.dead == -1:
					t.Fatalf("%s shows a crashed node as left", observers[i].cfg.NodeName)
				case r.dead == 0:
					t.Fatalf("%s never saw %s dead", observers[i].cfg.NodeName, name)
				}
				worst = max(worst, r.dead)
				sawSuspect = sawSuspect || r.suspect > 0
			}
			t.Logf("detection (all observers): %v", worst.Round(time.Millisecond))
			if !sawSuspect {
				t.Error("no observer showed the node suspect before dead")
			}
			if worst >= 3*time.Second {
				t.Errorf("detection took %v, the promise is under 3 s", worst)
			}
		})
	}
}

func TestRestartWithSameName(t *testing.T) {
	ms := startCluster(t, 3, nil)
	old := ms[2]
	for i := range 3 {
		s := old.Local()
		s.LSN = uint64(100 + i)
		old.SetLocal(s)
	}
	oldState := old.Local()
	for _, m := range ms[:2] {
		eventually(t, "old state", func() (bool, string) {
			s, _ := memberState(m, "n3")
			return s.Version == oldState.Version, fmt.Sprintf("%+v", s)
		})
	}
	_ = old.Shutdown()
	for _, m := range ms[:2] {
		waitMembers(t, m, []string{"n3"}, Dead)
	}

	// Same name, new port (BindPort 0), new boot.
	restarted := newTestMesh(t, "n3", func(c *Config) {
		c.NodeID = 3
		c.Seeds = []string{ms[0].LocalAddr()}
	})
	restarted.SetLocal(NodeState{NodeID: 3, Role: RoleReplica, LSN: 7})
	restarted.Start()
	newState := restarted.Local()
	if newState.StartedAt <= oldState.StartedAt || newState.Version >= oldState.Version {
		t.Fatalf("test premise: old %d/%d new %d/%d", oldState.StartedAt, oldState.Version,
			newState.StartedAt, newState.Version)
	}
	for _, m := range ms[:2] {
		eventually(t, m.cfg.NodeName+" re-admits n3", func() (bool, string) {
			for _, mb := range m.Members() {
				if mb.State.Name == "n3" {
					ok := mb.Liveness == Alive && mb.State.StartedAt == newState.StartedAt &&
						mb.State.Version == newState.Version && mb.State.LSN == 7 && mb.Addr == restarted.LocalAddr()
					return ok, fmt.Sprintf("%+v", mb)
				}
			}
			return false, "n3 missing"
		})
	}
	waitMembers(t, restarted, []string{"n1", "n2"}, Alive)
	// The restarted node kept its own fresh state, not the echo of its
	// previous boot.
	if got := restarted.Local(); got.StartedAt != newState.StartedAt || got.LSN != 7 {
		t.Fatalf("restarted node's local state: %+v", got)
	}
}

// TestRejoinAfterPartition: a node whose only seed disappeared (and was
// reaped as dead) merges again with the node that comes back at that
// address, through the rejoin loop alone.
func TestRejoinAfterPartition(t *testing.T) {
	b := newTestMesh(t, "b", nil)
	b.SetLocal(NodeState{NodeID: 2})
	b.Start()
	a := newTestMesh(t, "a", seeds(b.LocalAddr()))
	a.SetLocal(NodeState{NodeID: 1})
	a.Start()
	waitMembers(t, a, []string{"b"}, Alive)
	waitMembers(t, b, []string{"a"}, Alive)

	addr := b.LocalAddr()
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	_ = b.Shutdown()
	waitMembers(t, a, []string{"b"}, Dead)

	// b comes back on the same address knowing nobody: only a's rejoin
	// loop can merge the two sides.
	b2 := newTestMesh(t, "b", func(c *Config) { c.BindPort = port })
	b2.SetLocal(NodeState{NodeID: 2, LSN: 42})
	b2.Start()
	start := time.Now()
	waitMembers(t, b2, []string{"a"}, Alive)
	eventually(t, "a sees the new b", func() (bool, string) {
		s, _ := memberState(a, "b")
		return liveness(a, "b") == Alive && s.StartedAt == b2.Local().StartedAt && s.LSN == 42,
			fmt.Sprintf("%s %+v", liveness(a, "b"), s)
	})
	t.Logf("re-merged %v after b came back", time.Since(start).Round(time.Millisecond))
}

func TestMalformedInputIsDropped(t *testing.T) {
	m := newTestMesh(t, "m", nil)
	d := &delegate{m: m}
	before := m.Members()

	foreign := fullState()
	foreign.ClusterName = "other"
	foreignMsg, _ := encodeState(foreign)
	own := fullState()
	own.Name, own.ClusterName, own.StartedAt = "m", "test", m.Local().StartedAt+1
	ownMsg, _ := encodeState(own)

	inputs := [][]byte{
		nil, {}, {kindState}, {kindState, 0},
		frame(kindState, []byte("{")),
		frame(kindState, []byte(`{"name":"","cluster_name":"test","started_at":1}`)),
		frame(kindState, bytes.Repeat([]byte("x"), maxStateSize+10)),
		frame(kindSnapshot, []byte(`{"states":[]}`)), // snapshots only via push/pull
		frame(kindLeave, []byte(`{}`)),
		frame(0x30, nil),                    // reserved kind
		frame(FirstHandlerKind+1, []byte{}), // no handler
		{0xff, 0xff},
	}
	for _, in := range inputs {
		d.NotifyMsg(in)
	}
	dropped := m.Stats().MessagesDropped
	if dropped != uint64(len(inputs)) {
		t.Fatalf("dropped %d of %d", dropped, len(inputs))
	}
	d.NotifyMsg(foreignMsg)
	d.NotifyMsg(ownMsg)
	if st := m.Stats(); st.StatesRejected != 2 {
		t.Fatalf("stats %+v", st)
	}

	for _, in := range [][]byte{
		{}, {kindSnapshot}, frame(kindSnapshot, []byte("nope")), frame(kindState, []byte("{}")),
		frame(kindSnapshot, []byte(`{"states":[{"name":"x"}]}`)),
	} {
		d.MergeRemoteState(in, false)
	}
	if got := m.Members(); len(got) != len(before) || !got[0].Self {
		t.Fatalf("members changed: %+v", got)
	}
	if m.Local().StartedAt != before[0].State.StartedAt {
		t.Fatal("local state changed")
	}

	// NodeMeta stays small.
	m.SetLocal(NodeState{NodeID: 12, APIURL: "https://db-node-12.example.internal:8443"})
	if b := d.NodeMeta(512); len(b) == 0 || len(b) > 100 {
		t.Fatalf("meta %q", b)
	}
}

func TestReliableHandler(t *testing.T) {
	ms := startCluster(t, 2, nil)
	const kind = FirstHandlerKind + 1
	if err := ms[0].RegisterHandler(kindState, func([]byte) {}); err == nil {
		t.Fatal("reserved kind accepted")
	}
	got := make(chan []byte, 1)
	if err := ms[1].RegisterHandler(kind, func(p []byte) { got <- p }); err != nil {
		t.Fatal(err)
	}
	if err := ms[1].RegisterHandler(kind, func([]byte) {}); err == nil {
		t.Fatal("duplicate handler accepted")
	}
	if err := ms[0].SendReliable("n2", kind, []byte("vote")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if string(p) != "vote" {
			t.Fatalf("payload %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
	if err := ms[0].SendReliable("nobody", kind, nil); err == nil {
		t.Fatal("send to unknown member succeeded")
	}
}
