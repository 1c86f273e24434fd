package mesh

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func fullState() NodeState {
	return NodeState{
		NodeID: 2, Name: "node-2", ClusterName: "prod", APIURL: "http://10.0.0.2:8080",
		PGHost: "10.0.0.2", PGPort: 5432, DataState: DataReady, SystemID: 7321456789012345678,
		Role: RoleReplica, PGRunning: true, Healthy: true, Timeline: 3, LSN: 1 << 40, ReplayLSN: 1<<40 - 5,
		LagBytes: 5, LagSeconds: 0.25, Streaming: true, PGVersion: "15.6",
		Tags: map[string]string{"dc": "eu-1"}, StartedAt: 1700000000123456789, Version: 42, ProducedAt: 1700000001000,
	}
}

func TestStateRoundTrip(t *testing.T) {
	in := fullState()
	msg, err := encodeState(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) > maxBroadcastSize {
		t.Fatalf("a typical state is %d bytes, over the broadcast limit %d", len(msg), maxBroadcastSize)
	}
	t.Logf("typical state message: %d bytes", len(msg))
	kind, payload, err := decodeMessage(msg)
	if err != nil || kind != kindState {
		t.Fatalf("kind %#x err %v", kind, err)
	}
	out, err := decodeState(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
	}
	// SystemID travels as a string: a float64 would lose digits.
	if !bytes.Contains(payload, []byte(`"system_id":"7321456789012345678"`)) {
		t.Fatalf("system_id encoding: %s", payload)
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	good, _ := encodeState(fullState())
	for _, tc := range []struct {
		name string
		buf  []byte
	}{
		{"empty", nil},
		{"one byte", []byte{kindState}},
		{"bad version", append([]byte{kindState, 9}, good[2:]...)},
		{"reserved kind", frame(0x20, []byte("{}"))},
		{"kind zero", frame(0, nil)},
		{"oversized state", frame(kindState, bytes.Repeat([]byte(" "), maxStateSize+1))},
		{"oversized leave", frame(kindLeave, bytes.Repeat([]byte(" "), maxLeaveSize+1))},
	} {
		if _, _, err := decodeMessage(tc.buf); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err %v, want malformed", tc.name, err)
		}
	}
	if kind, p, err := decodeMessage(frame(FirstHandlerKind, []byte("x"))); err != nil || kind != FirstHandlerKind || string(p) != "x" {
		t.Fatalf("handler kind: %#x %q %v", kind, p, err)
	}
}

func TestDecodeStateRejects(t *testing.T) {
	valid := fullState()
	mut := func(f func(*NodeState)) []byte {
		s := valid
		f(&s)
		b, _ := json.Marshal(s)
		return b
	}
	manyTags := map[string]string{}
	for i := range maxTags + 1 {
		manyTags[strings.Repeat("k", i+1)] = "v"
	}
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"not json", []byte("{nope")},
		{"json array", []byte("[]")},
		{"wrong type", []byte(`{"name": 5}`)},
		{"no name", mut(func(s *NodeState) { s.Name = "" })},
		{"long name", mut(func(s *NodeState) { s.Name = strings.Repeat("n", maxNodeNameLen+1) })},
		{"no cluster", mut(func(s *NodeState) { s.ClusterName = "" })},
		{"no started_at", mut(func(s *NodeState) { s.StartedAt = 0 })},
		{"negative started_at", mut(func(s *NodeState) { s.StartedAt = -1 })},
		{"too many tags", mut(func(s *NodeState) { s.Tags = manyTags })},
		{"system_id not a string", []byte(`{"name":"a","cluster_name":"c","started_at":1,"system_id":5}`)},
	} {
		if _, err := decodeState(tc.p); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err %v, want malformed", tc.name, err)
		}
	}
	// Unknown fields are fine: a newer daemon may add some.
	if _, err := decodeState([]byte(`{"name":"a","cluster_name":"c","started_at":1,"future_field":[1,2]}`)); err != nil {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestSnapshotRoundTripSkipsInvalid(t *testing.T) {
	a, b := fullState(), fullState()
	b.Name = "node-3"
	msg, err := encodeSnapshot([]NodeState{a, b})
	if err != nil {
		t.Fatal(err)
	}
	_, payload, err := decodeMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	states, invalid, err := decodeSnapshot(payload)
	if err != nil || invalid != 0 || len(states) != 2 || !reflect.DeepEqual(states[1], b) {
		t.Fatalf("states %+v invalid %d err %v", states, invalid, err)
	}
	states, invalid, err = decodeSnapshot([]byte(`{"states":[{"name":"x","cluster_name":"c","started_at":1},{"name":""},7]}`))
	if err != nil || invalid != 2 || len(states) != 1 {
		t.Fatalf("mixed snapshot: %d states, %d invalid, %v", len(states), invalid, err)
	}
	if _, _, err := decodeSnapshot([]byte(`{"states":` + strings.Repeat("x", 3) + `}`)); err == nil {
		t.Fatal("garbage snapshot accepted")
	}
	many := `{"states":[` + strings.TrimSuffix(strings.Repeat("{},", maxSnapshotStates+1), ",") + `]}`
	if _, _, err := decodeSnapshot([]byte(many)); !errors.Is(err, errMalformed) {
		t.Fatalf("oversized snapshot: %v", err)
	}
}

func TestLeaveRoundTrip(t *testing.T) {
	msg, err := encodeLeave(leaveNotice{Name: "n", StartedAt: 5})
	if err != nil {
		t.Fatal(err)
	}
	kind, p, err := decodeMessage(msg)
	if err != nil || kind != kindLeave {
		t.Fatal(kind, err)
	}
	if n, err := decodeLeave(p); err != nil || n.Name != "n" || n.StartedAt != 5 {
		t.Fatal(n, err)
	}
	for _, bad := range []string{`{}`, `{"name":"n"}`, `{"started_at":1}`, `x`} {
		if _, err := decodeLeave([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestMetaEncoding(t *testing.T) {
	b, full := encodeMeta(nodeMeta{NodeID: 3, APIURL: "http://h:1"}, 512)
	if !full || string(b) != `{"node_id":3,"api_url":"http://h:1"}` {
		t.Fatalf("%s %v", b, full)
	}
	b, full = encodeMeta(nodeMeta{NodeID: 3, APIURL: strings.Repeat("u", 600)}, 512)
	if full || string(b) != `{"node_id":3}` {
		t.Fatalf("oversized api_url: %s %v", b, full)
	}
	if b, _ := encodeMeta(nodeMeta{NodeID: 3}, 2); b != nil {
		t.Fatalf("tiny limit: %s", b)
	}
	if m, err := decodeMeta(nil); err != nil || m != (nodeMeta{}) {
		t.Fatal(m, err)
	}
	if _, err := decodeMeta([]byte("{")); err == nil {
		t.Fatal("bad meta accepted")
	}
}

// FuzzDecodeMessage feeds arbitrary bytes to every decoder on the receive
// path: none may panic, and a state that decodes must survive a second
// round trip unchanged.
func FuzzDecodeMessage(f *testing.F) {
	st, _ := encodeState(fullState())
	snap, _ := encodeSnapshot([]NodeState{fullState()})
	leave, _ := encodeLeave(leaveNotice{Name: "n", StartedAt: 1})
	for _, seed := range [][]byte{
		st, snap, leave, nil, {kindState}, {kindState, wireVersion},
		frame(kindState, []byte(`{"name":"a","cluster_name":"c","started_at":1,"tags":{}}`)),
		frame(kindState, []byte(`{"name":"a","cluster_name":"c","started_at":1,"lag_seconds":1e400}`)),
		frame(kindState, []byte(`{"name":"\xff","cluster_name":"c","started_at":1}`)),
		frame(kindSnapshot, []byte(`{"states":[null,{},1]}`)),
		frame(FirstHandlerKind, []byte("raft")),
		{0xff, 0xff, 0xff},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		kind, payload, err := decodeMessage(buf)
		if err != nil {
			return
		}
		switch kind {
		case kindState:
			s, err := decodeState(payload)
			if err != nil {
				return
			}
			again, err := encodeState(s)
			if err != nil {
				t.Fatalf("decoded state does not encode: %v", err)
			}
			_, p2, err := decodeMessage(again)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := decodeState(p2)
			if err != nil || !reflect.DeepEqual(s, s2) {
				t.Fatalf("unstable round trip: %+v vs %+v (%v)", s, s2, err)
			}
		case kindSnapshot:
			_, _, _ = decodeSnapshot(payload)
		case kindLeave:
			_, _ = decodeLeave(payload)
		}
		_, _ = decodeMeta(buf)
	})
}
