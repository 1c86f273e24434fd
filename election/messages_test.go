package election

import (
	"bytes"
	"errors"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

func u64(v uint64) *uint64 { return &v }

// FuzzDecodeMessage feeds arbitrary bytes to the decoder of the messages
// daemons exchange: it must never panic, every refusal must wrap
// ErrMalformedMessage, and an accepted message must re-encode to a fixed
// point and print.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range []Message{
		{Type: MsgRaft, From: 1, To: 2, Raft: &pb.Message{Type: pb.MessageType(pb.MsgApp).Enum(), From: u64(1), To: u64(2), Term: u64(3), Index: u64(4),
			Entries: []*pb.Entry{{Term: u64(3), Index: u64(5), Data: []byte(`{"type":"promote"}`)}}}},
		{Type: MsgLeaseRequest, From: 1, To: 2, Token: 3, Seq: 9},
		{Type: MsgLeaseGrant, From: 2, To: 1, Token: 3, Seq: 9, Granted: true},
		{Type: MsgLeaseGrant, From: 2, To: 1, Token: 3, Revoked: true, Reason: "revoked"},
		{Type: MsgRevoke, From: 3, To: 2, Token: 3},
		{Type: MsgRevoked, From: 2, To: 3, Token: 3, Remaining: 1500 * time.Millisecond},
		{Type: MsgRelease, From: 1, To: 2, Token: 3, Final: &Position{Timeline: 2, LSN: 1 << 30, Token: 3, TokenKnown: true}},
		{Type: MsgPositionRequest, From: 3, To: 2},
		{Type: MsgPosition, From: 2, To: 3, Candidate: &Candidate{ID: 2, Alive: true, Healthy: true, Position: Position{Timeline: 2, LSN: 7}}},
	} {
		b, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{`, `null`, `[]`, `{"type":"raft","from":1,"to":2}`,
		`{"type":"raft","from":1,"to":2,"raft":"AAAA"}`,
		`{"type":"raft","from":1,"to":2,"raft":"////"}`,
		`{"type":"lease-request","from":1,"to":2}`,
		`{"type":"position","from":1,"to":2}`,
		`{"type":"nope","from":1,"to":2,"token":1}`,
		`{"type":"revoked","from":1,"to":2,"token":1,"remaining":-9223372036854775808}`,
		`{"type":"position","from":1,"to":2,"candidate":{"ID":18446744073709551615}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("error without ErrMalformedMessage: %v", err)
			}
			return
		}
		_ = m.String()
		b1, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		m2, err := DecodeMessage(b1)
		if err != nil {
			t.Fatalf("re-encoded message refused: %v\n%s", err, b1)
		}
		b2, err := m2.Encode()
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("unstable encoding (%v):\n%s\n%s", err, b1, b2)
		}
	})
}
