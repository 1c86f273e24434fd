package chaos

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// ack is an acknowledged write by the node on port, under token.
func ack(id int64, client string, sent, done, port int, token uint64) Op {
	return Op{ID: id, Client: client, Sent: at(sent), Done: at(done), OK: true, Port: port, Token: token}
}

var ports = map[int]int{5001: 1, 5002: 2, 5003: 3}

func TestCheckLostInDoubtPhantom(t *testing.T) {
	ops := []Op{
		ack(1, "haproxy", 0, 10, 5001, 1),
		ack(2, "haproxy", 20, 30, 5001, 1),
		{ID: 3, Client: "haproxy", Sent: at(40), Done: at(1040), Err: "timeout"},
		{ID: 4, Client: "haproxy", Sent: at(1050), Done: at(2050), Err: "timeout"},
	}
	present := map[int64]string{1: "haproxy", 3: "haproxy", 99: "nobody"}
	f := Check(CheckInput{Ops: ops, Present: present, PortNode: ports, From: at(0), To: at(3000)})
	if f.Attempted != 4 || f.Acked != 2 {
		t.Fatalf("attempted/acked %d/%d, want 4/2", f.Attempted, f.Acked)
	}
	if len(f.Lost) != 1 || f.Lost[0].ID != 2 {
		t.Errorf("lost %v, want id 2", f.Lost)
	}
	if len(f.InDoubt) != 1 || f.InDoubt[0].ID != 3 {
		t.Errorf("in doubt %v, want id 3", f.InDoubt)
	}
	if !slices.Equal(f.Phantom, []int64{99}) {
		t.Errorf("phantom %v, want [99]", f.Phantom)
	}
	if v := f.Violations(false); len(v) != 1 {
		t.Errorf("async violations %q: want only the phantom", v)
	}
	if v := f.Violations(true); len(v) != 2 {
		t.Errorf("lossless violations %q: want lost and phantom", v)
	}
	// Acknowledgements at 10 and 30 ms, then nothing until 3 s.
	if len(f.Outages) != 1 || f.LongestOutage != 2970*time.Millisecond {
		t.Errorf("outages %v longest %s, want one of 2.97 s", f.Outages, f.LongestOutage)
	}
}

func TestCheckSplitBrain(t *testing.T) {
	ops := []Op{
		ack(1, "direct-node1", 0, 10, 5001, 5),
		ack(2, "direct-node2", 100, 110, 5002, 6), // new primary, token 6
		// Old primary acknowledges a write sent after token 6 was
		// acknowledged: split brain.
		ack(3, "direct-node1", 120, 130, 5001, 5),
		// Sent before token 6's first ack arrived: the commits may be
		// concurrent, not provably ordered: not counted.
		ack(4, "direct-node1", 105, 140, 5001, 5),
		// The same node with an older token after its own newer one is no
		// split brain between nodes.
		ack(5, "direct-node2", 200, 210, 5002, 6),
	}
	present := map[int64]string{1: "", 2: "", 3: "", 4: "", 5: ""}
	f := Check(CheckInput{Ops: ops, Present: present, PortNode: ports, From: at(0), To: at(300)})
	if len(f.SplitBrain) != 1 || f.SplitBrain[0].Late.ID != 3 || f.SplitBrain[0].Prior.ID != 2 {
		t.Fatalf("split brain %+v, want id 3 after id 2", f.SplitBrain)
	}
	if len(f.Violations(true)) != 1 {
		t.Errorf("violations %q", f.Violations(true))
	}
}

// The highest token acknowledged so far may come from the late write's
// own node; a higher token than the late write's from a third node must
// still be found.
func TestCheckSplitBrainSecondBest(t *testing.T) {
	ops := []Op{
		ack(1, "a", 0, 10, 5002, 6),  // node2 token 6
		ack(2, "b", 20, 30, 5003, 7), // node3 token 7
		ack(3, "c", 40, 50, 5003, 8), // node3 token 8 (best; node3)
		ack(4, "d", 60, 70, 5003, 5), // node3 with token 5: node2's 6 is higher and came first
	}
	f := Check(CheckInput{Ops: ops, Present: map[int64]string{1: "", 2: "", 3: "", 4: ""}, PortNode: ports, From: at(0), To: at(100)})
	if len(f.SplitBrain) != 1 || f.SplitBrain[0].Late.ID != 4 || f.SplitBrain[0].Prior.ID != 1 {
		t.Fatalf("split brain %+v, want id 4 after id 1 (node2, token 6)", f.SplitBrain)
	}
}

func TestCheckTokenMismatchAndFailovers(t *testing.T) {
	ops := []Op{
		ack(1, "haproxy", 0, 10, 5001, 1),
		ack(2, "haproxy", 2000, 2010, 5002, 2),
		ack(3, "haproxy", 2100, 2110, 5003, 2), // history: token 2 is node2's
	}
	hist := []History{{FencingToken: 1, New: 1}, {FencingToken: 2, Old: 1, New: 2, Reason: "failover"}}
	f := Check(CheckInput{Ops: ops, Present: map[int64]string{1: "", 2: "", 3: ""}, History: hist, PortNode: ports, From: at(0), To: at(2200), FirstToken: 1})
	if len(f.TokenMismatch) != 1 || f.TokenMismatch[0].ID != 3 {
		t.Errorf("token mismatch %v, want id 3", f.TokenMismatch)
	}
	if len(f.Failovers) != 1 || f.Failovers[0].Token != 2 || f.Failovers[0].WritePause != 2000*time.Millisecond || f.Failovers[0].Node != 2 {
		t.Errorf("failovers %+v, want token 2 on node2 after a 2 s pause", f.Failovers)
	}
}

func TestCheckDoublePrimary(t *testing.T) {
	ops := []Op{
		ack(1, "probe-node1", 0, 50, 5001, 1),
		ack(2, "probe-node2", 40, 60, 5002, 2), // overlaps id 1 on another node
		ack(3, "probe-node2", 100, 110, 5002, 2),
		ack(4, "probe-node2", 105, 120, 5002, 2), // same node: no
	}
	samples := []Sample{
		{Node: 1, API: true, APISent: at(0), APIDone: at(20)},
		{Node: 2, API: true, APISent: at(30), APIDone: at(40)},
		{Node: 3, API: true, APISent: at(35), APIDone: at(45)},
	}
	f := Check(CheckInput{Ops: ops, Samples: samples, Present: map[int64]string{1: "", 2: "", 3: "", 4: ""}, PortNode: ports, From: at(0), To: at(200)})
	if len(f.DoublePrimary) != 1 || f.DoublePrimary[0].A != 1 || f.DoublePrimary[0].B != 2 {
		t.Errorf("double primary %+v, want nodes 1 and 2", f.DoublePrimary)
	}
	if len(f.APIDoublePrimary) != 1 || f.APIDoublePrimary[0].A != 2 || f.APIDoublePrimary[0].B != 3 {
		t.Errorf("API double primary %+v, want nodes 2 and 3", f.APIDoublePrimary)
	}
}

func TestScheduleDeterministic(t *testing.T) {
	o := ScheduleOptions{Seed: 42, Duration: 10 * time.Minute, MinHold: 3 * time.Second, MaxHold: 15 * time.Second, MinGap: 3 * time.Second, MaxGap: 8 * time.Second}
	a, err := NewSchedule(o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSchedule(o)
	if !slices.Equal(a, b) || len(a) < 20 {
		t.Fatalf("schedules differ or are short (%d faults)", len(a))
	}
	seen := map[Kind]bool{}
	for _, f := range a {
		seen[f.Kind] = true
		if f.At+f.Hold > o.Duration {
			t.Errorf("fault %+v ends after the phase", f)
		}
	}
	if len(seen) != len(AllKinds) {
		t.Errorf("10 minutes drew %d of %d kinds", len(seen), len(AllKinds))
	}
	o.Seed = 43
	c, _ := NewSchedule(o)
	if slices.Equal(a, c) {
		t.Error("seeds 42 and 43 give the same schedule")
	}
	if _, err := NewSchedule(ScheduleOptions{Duration: time.Minute}); err == nil {
		t.Error("zero bounds accepted")
	}
	if _, err := ParseKinds("kill-daemon,bogus"); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestParseWriterToken(t *testing.T) {
	if tok, e := parseWriterToken("ramd writer token v1\n7\n"); tok != 7 || e != "" {
		t.Errorf("got %d %q", tok, e)
	}
	if _, e := parseWriterToken("ramd writer token v1\npending\n"); e == "" {
		t.Error("pending parsed as a token")
	}
}

// Async mode: the WAL a failover dropped is estimated per token from the
// acknowledged writes' positions, and the kept history is checked against
// maximum_lag_on_failover measured from where the primary was LossWindow
// before it stopped (what the others could have seen), in async mode only.
func TestCheckLostWAL(t *testing.T) {
	w := func(id int64, ms int, port int, token, lsn uint64) Op {
		op := ack(id, "haproxy", ms, ms+5, port, token)
		op.LSN = lsn
		return op
	}
	ops := []Op{
		w(1, 0, 5001, 3, 1000),
		w(2, 1000, 5001, 3, 1100), // survives: the kept history reaches 1100
		w(3, 2000, 5001, 3, 1300), // lost; the last write 3 s before the primary stopped
		w(4, 5000, 5001, 3, 1900), // lost, unseen
		w(5, 6000, 5001, 3, 2000), // lost, unseen: the primary's last acknowledgement
		w(6, 7000, 5002, 4, 5000), // the new primary's writes survive
		w(7, 8000, 5003, 5, 9000), // lost, and nothing under token 5 survived
	}
	present := map[int64]string{1: "", 2: "", 6: ""}
	in := CheckInput{Ops: ops, Present: present, PortNode: ports, From: at(0), To: at(9000), LossBound: 100}
	f := Check(in)
	want := []LostWAL{
		{Token: 3, Node: 1, Writes: 3, Kept: 1100, LastLost: 2000, Bytes: 900, Seen: 1300, Behind: 200},
		{Token: 5, Node: 3, Writes: 1, Kept: 0, LastLost: 9000, Bytes: 0, NoneKept: true},
	}
	if !slices.Equal(f.LostWAL, want) {
		t.Fatalf("lost WAL %+v, want %+v", f.LostWAL, want)
	}
	if v := f.Violations(false); len(v) != 1 || !strings.Contains(v[0], "token 3 (node 1) lost 3 writes: the history kept ends 200 bytes before") {
		t.Errorf("async violations %q, want token 3 200 bytes short, beyond the 100-byte bound", v)
	}
	in.LossBound = 500 // the 900 bytes span more, but the unseen writes do not count
	if v := Check(in).Violations(false); len(v) != 0 {
		t.Errorf("async violations %q within the bound", v)
	}
	// Synchronous modes count the lost writes themselves instead.
	if v := Check(in).Violations(true); len(v) != 1 || !strings.Contains(v[0], "4 acknowledged writes lost") {
		t.Errorf("lossless violations %q", v)
	}
}
