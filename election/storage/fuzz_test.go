package storage

import (
	"testing"

	"github.com/ramd/ramd/election"
	pb "go.etcd.io/raft/v3/raftpb"
)

func seedSegment(f *testing.F) []byte {
	var buf []byte
	buf = appendRecord(buf, recSegment, segmentHeader{seq: 1}.encode())
	for _, rd := range readys() {
		recs, err := readyRecords(rd.HardState, rd.Snapshot, rd.Entries, rd.Revoked, rd.RevokedChanged)
		if err != nil {
			f.Fatal(err)
		}
		buf = append(buf, encodeBatch(recs)...)
	}
	return buf
}

// FuzzDecodeRecord: arbitrary bytes never panic the record decoder, and
// whatever it accepts re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	seg := seedSegment(f)
	f.Add(seg)
	f.Add(seg[:headerSize])
	f.Add(appendRecord(nil, recRevoked, encodeUint64(7)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b)
		if err != nil {
			return
		}
		if n < headerSize || n > len(b) {
			t.Fatalf("decoded %d bytes of %d", n, len(b))
		}
		if got := appendRecord(nil, r.typ, r.payload); string(got) != string(b[:n]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzReplaySegment: replay of arbitrary bytes never panics (damage is an
// error or a torn tail), and what it keeps is a prefix it can replay again
// to the same state.
func FuzzReplaySegment(f *testing.F) {
	seg := seedSegment(f)
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		rp, err := replaySegment("fuzz.wal", b, 1)
		if err != nil {
			return
		}
		if rp.good > int64(len(b)) {
			t.Fatalf("good prefix %d beyond %d bytes", rp.good, len(b))
		}
		again, err := replaySegment("fuzz.wal", b[:rp.good], 1)
		if err != nil || again.tornReason != "" || again.batches != rp.batches {
			t.Fatalf("the kept prefix does not replay cleanly: %v %q", err, again.tornReason)
		}
	})
}

// BenchmarkSaveFsync is the cost of one durable Save: a HardState and one
// small entry, fsynced (what a vote or an appended command costs).
func BenchmarkSaveFsync(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	defer s.Close()
	data := make([]byte, 100)
	i := uint64(0)
	for b.Loop() {
		i++
		if err := s.Save(election.Ready{HardState: hs(1, 1, i-1), Entries: []*pb.Entry{ent(i, 1, string(data))}, MustSync: true}); err != nil {
			b.Fatal(err)
		}
	}
}
