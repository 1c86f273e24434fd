package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
)

// Every message the mesh puts on the wire (broadcast, reliable message or
// push/pull state) is framed as
//
//	[kind:1][version:1][payload]
//
// so that later issues can add kinds without breaking older daemons: a
// receiver drops, and counts, kinds and versions it does not understand.
// Payloads of the mesh's own kinds are JSON, which keeps them debuggable
// and lets fields be added compatibly (unknown fields are ignored).
const (
	// wireVersion is the framing/payload version of the mesh's own kinds.
	wireVersion byte = 1

	kindState    byte = 0x01 // one NodeState (broadcast)
	kindSnapshot byte = 0x02 // every known NodeState (push/pull)
	kindLeave    byte = 0x03 // graceful leave notice

	// FirstHandlerKind is the first kind free for RegisterHandler. Kinds
	// from 0x04 up to it are reserved for the mesh itself.
	FirstHandlerKind byte = 0x40
)

// Size limits. A state must fit a gossip packet to be broadcast at all
// (memberlist skips queued items larger than the free space forever), the
// others bound what a peer can make us allocate.
const (
	headerSize = 2
	// maxBroadcastSize is what always fits one UDP gossip packet
	// (UDPBufferSize 1400 minus the longest label, encryption and compound
	// overheads). Larger states still spread by push/pull.
	maxBroadcastSize  = 1024
	maxStateSize      = 16 << 10
	maxLeaveSize      = 1 << 10
	maxSnapshotSize   = 4 << 20
	maxSnapshotStates = 4096
	maxHandlerSize    = 4 << 20
	maxTags           = 64
)

// errMalformed is wrapped by every decoding error.
var errMalformed = errors.New("malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// frame prepends the header to a payload.
func frame(kind byte, payload []byte) []byte {
	b := make([]byte, 0, headerSize+len(payload))
	b = append(b, kind, wireVersion)
	return append(b, payload...)
}

// decodeMessage checks the header and the size limit of the message's kind
// and returns the payload (a sub-slice of buf, not a copy).
func decodeMessage(buf []byte) (kind byte, payload []byte, err error) {
	if len(buf) < headerSize {
		return 0, nil, malformed("%d bytes, shorter than the header", len(buf))
	}
	kind, version, payload := buf[0], buf[1], buf[headerSize:]
	if version != wireVersion {
		return kind, nil, malformed("kind %#x: unsupported version %d", kind, version)
	}
	limit := 0
	switch {
	case kind == kindState:
		limit = maxStateSize
	case kind == kindSnapshot:
		limit = maxSnapshotSize
	case kind == kindLeave:
		limit = maxLeaveSize
	case kind >= FirstHandlerKind:
		limit = maxHandlerSize
	default:
		return kind, nil, malformed("unknown kind %#x", kind)
	}
	if len(payload) > limit {
		return kind, nil, malformed("kind %#x: %d bytes, over the %d-byte limit", kind, len(payload), limit)
	}
	return kind, payload, nil
}

// encodeState frames one state for a broadcast.
func encodeState(s NodeState) ([]byte, error) {
	p, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("mesh: encode state: %w", err)
	}
	return frame(kindState, p), nil
}

func decodeState(payload []byte) (NodeState, error) {
	var s NodeState
	if err := json.Unmarshal(payload, &s); err != nil {
		return NodeState{}, malformed("state: %v", err)
	}
	if err := checkState(s); err != nil {
		return NodeState{}, err
	}
	return normalizeState(s), nil
}

// checkState rejects states no honest daemon produces: without them the
// view would key entries by "" or accept a state no later one can replace.
func checkState(s NodeState) error {
	switch {
	case s.Name == "" || len(s.Name) > maxNodeNameLen:
		return malformed("state: bad name length %d", len(s.Name))
	case s.ClusterName == "" || len(s.ClusterName) > maxClusterNameLen:
		return malformed("state %q: bad cluster name length %d", s.Name, len(s.ClusterName))
	case s.StartedAt <= 0:
		return malformed("state %q: started_at %d", s.Name, s.StartedAt)
	case len(s.Tags) > maxTags:
		return malformed("state %q: %d tags", s.Name, len(s.Tags))
	}
	return nil
}

// normalizeState makes equal states compare equal and keeps the state
// encodable: an empty tag map becomes nil (JSON omits both) and the map is
// copied so the caller's later writes cannot race with gossip; a NaN or
// infinite lag (JSON cannot carry those) becomes 0.
func normalizeState(s NodeState) NodeState {
	if len(s.Tags) == 0 {
		s.Tags = nil
	} else {
		s.Tags = maps.Clone(s.Tags)
	}
	if math.IsNaN(s.LagSeconds) || math.IsInf(s.LagSeconds, 0) {
		s.LagSeconds = 0
	}
	return s
}

// snapshotPayload is the push/pull payload.
type snapshotPayload struct {
	States []NodeState `json:"states"`
}

func encodeSnapshot(states []NodeState) ([]byte, error) {
	p, err := json.Marshal(snapshotPayload{States: states})
	if err != nil {
		return nil, fmt.Errorf("mesh: encode snapshot: %w", err)
	}
	return frame(kindSnapshot, p), nil
}

// decodeSnapshot returns the valid states of a snapshot and how many
// entries were invalid; one bad entry does not spoil the others.
func decodeSnapshot(payload []byte) (states []NodeState, invalid int, err error) {
	var p struct {
		States []json.RawMessage `json:"states"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, 0, malformed("snapshot: %v", err)
	}
	if len(p.States) > maxSnapshotStates {
		return nil, 0, malformed("snapshot: %d states, over the limit of %d", len(p.States), maxSnapshotStates)
	}
	states = make([]NodeState, 0, len(p.States))
	for _, raw := range p.States {
		s, err := decodeState(raw)
		if err != nil {
			invalid++
			continue
		}
		states = append(states, s)
	}
	return states, invalid, nil
}

// leaveNotice announces a graceful leave of one boot of a node.
// memberlist's own leave is indistinguishable from a failure for the
// EventDelegate, hence this message.
type leaveNotice struct {
	Name      string `json:"name"`
	StartedAt int64  `json:"started_at"`
}

func encodeLeave(n leaveNotice) ([]byte, error) {
	p, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("mesh: encode leave notice: %w", err)
	}
	return frame(kindLeave, p), nil
}

func decodeLeave(payload []byte) (leaveNotice, error) {
	var n leaveNotice
	if err := json.Unmarshal(payload, &n); err != nil {
		return leaveNotice{}, malformed("leave notice: %v", err)
	}
	if n.Name == "" || len(n.Name) > maxNodeNameLen || n.StartedAt <= 0 {
		return leaveNotice{}, malformed("leave notice: bad name or started_at")
	}
	return n, nil
}

// nodeMeta is memberlist's per-node metadata: only what changes (almost)
// never, because every change floods alive messages.
type nodeMeta struct {
	NodeID int    `json:"node_id"`
	APIURL string `json:"api_url,omitempty"`
}

// encodeMeta returns the metadata within limit bytes. If it does not fit
// (memberlist panics on oversized metadata) the API URL is dropped and
// full reports false.
func encodeMeta(m nodeMeta, limit int) (b []byte, full bool) {
	if b, err := json.Marshal(m); err == nil && len(b) <= limit {
		return b, true
	}
	if b, err := json.Marshal(nodeMeta{NodeID: m.NodeID}); err == nil && len(b) <= limit {
		return b, false
	}
	return nil, false
}

func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nodeMeta{}, malformed("node meta: %v", err)
	}
	return m, nil
}
