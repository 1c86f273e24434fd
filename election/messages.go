package election

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MsgType tags a Message between daemons.
type MsgType string

const (
	// MsgRaft carries an etcd raft message.
	MsgRaft MsgType = "raft"
	// MsgLeaseRequest: primary → voter, "grant me Token (request Seq)".
	MsgLeaseRequest MsgType = "lease-request"
	// MsgLeaseGrant: voter → primary, the answer (Granted, Reason).
	MsgLeaseGrant MsgType = "lease-grant"
	// MsgRevoke: coordinator → voter, "never grant Token again".
	MsgRevoke MsgType = "revoke"
	// MsgRevoked: voter → coordinator, with Remaining (voter's clock).
	MsgRevoked MsgType = "revoked"
	// MsgRelease: primary → voters, "I stopped acknowledging writes
	// under Token; do not wait for my grants".
	MsgRelease MsgType = "release"
	// MsgPositionRequest: coordinator → node, "report your position".
	MsgPositionRequest MsgType = "position-request"
	// MsgPosition: node → coordinator, Candidate filled in.
	MsgPosition MsgType = "position"
	// MsgChanged (pglock backend): "the coordination database's row just
	// changed; read it now" — a hint that saves waiting for the next
	// periodic read, never a decision.
	MsgChanged MsgType = "changed"
)

// Message is one unit the daemon carries between nodes, in any order, any
// number of times or not at all: every handler tolerates loss,
// duplication and reordering.
type Message struct {
	Type MsgType `json:"type"`
	From uint64  `json:"from"`
	To   uint64  `json:"to"`

	Raft *pb.Message `json:"-"`

	Token   uint64 `json:"token,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	Granted bool   `json:"granted,omitempty"`
	// Revoked (lease-grant refusals): the voter has durably revoked Token
	// and will never grant it again.
	Revoked   bool          `json:"revoked,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Remaining time.Duration `json:"remaining,omitempty"`
	Candidate *Candidate    `json:"candidate,omitempty"`
	// Final (MsgRelease after a clean stop): the old primary's last WAL
	// record starts here; only a replica beyond it may be promoted.
	Final *Position `json:"final,omitempty"`
}

// ErrMalformedMessage wraps every message decoding failure.
var ErrMalformedMessage = errors.New("election: malformed message")

type wireMessage struct {
	Message
	RaftBytes []byte `json:"raft,omitempty"`
}

// Encode returns the message's wire form (JSON; the raft part as protobuf).
func (m Message) Encode() ([]byte, error) {
	w := wireMessage{Message: m}
	if m.Raft != nil {
		b, err := proto.Marshal(m.Raft)
		if err != nil {
			return nil, fmt.Errorf("election: encode raft message: %w", err)
		}
		w.RaftBytes = b
	}
	return json.Marshal(w)
}

// DecodeMessage parses a wire message; it never panics.
func DecodeMessage(b []byte) (Message, error) {
	var w wireMessage
	if err := json.Unmarshal(b, &w); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformedMessage, err)
	}
	m := w.Message
	if w.RaftBytes != nil {
		m.Raft = &pb.Message{}
		if err := proto.Unmarshal(w.RaftBytes, m.Raft); err != nil {
			return Message{}, fmt.Errorf("%w: raft: %w", ErrMalformedMessage, err)
		}
	}
	if err := m.validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}

func (m Message) validate() error {
	if m.From == 0 || m.To == 0 {
		return fmt.Errorf("%w: %s without from/to", ErrMalformedMessage, m.Type)
	}
	switch m.Type {
	case MsgRaft:
		if m.Raft == nil {
			return fmt.Errorf("%w: raft message without payload", ErrMalformedMessage)
		}
	case MsgLeaseRequest, MsgLeaseGrant, MsgRevoke, MsgRevoked, MsgRelease:
		if m.Token == 0 {
			return fmt.Errorf("%w: %s without token", ErrMalformedMessage, m.Type)
		}
	case MsgPositionRequest, MsgChanged:
	case MsgPosition:
		if m.Candidate == nil {
			return fmt.Errorf("%w: position without candidate", ErrMalformedMessage)
		}
	default:
		return fmt.Errorf("%w: unknown type %q", ErrMalformedMessage, m.Type)
	}
	return nil
}

func (m Message) String() string {
	switch m.Type {
	case MsgRaft:
		return fmt.Sprintf("%d->%d raft %s", m.From, m.To, m.Raft.GetType())
	case MsgLeaseGrant:
		return fmt.Sprintf("%d->%d %s token=%d seq=%d granted=%v revoked=%v %s", m.From, m.To, m.Type, m.Token, m.Seq, m.Granted, m.Revoked, m.Reason)
	case MsgRevoked:
		return fmt.Sprintf("%d->%d %s token=%d remaining=%v", m.From, m.To, m.Type, m.Token, m.Remaining)
	}
	return fmt.Sprintf("%d->%d %s token=%d seq=%d", m.From, m.To, m.Type, m.Token, m.Seq)
}
