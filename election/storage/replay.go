package storage

import (
	"errors"
	"fmt"
	"slices"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrCorrupt marks damage that cannot be a torn final write: a record in
// the middle of a segment fails its checksum, or a checksummed record does
// not make sense. Open refuses to guess; the error names file and offset.
var ErrCorrupt = errors.New("storage: corrupt write-ahead log")

// state is the persisted election state, as replay rebuilds it and Save
// keeps it current. entries are contiguous and start right after the
// snapshot (or at index 1 without one).
type state struct {
	hardState *pb.HardState
	snapshot  *pb.Snapshot
	entries   []*pb.Entry
	revoked   uint64
}

func (s *state) empty() bool {
	return s.hardState == nil && s.snapshot == nil && len(s.entries) == 0 && s.revoked == 0
}

func (s *state) snapIndex() uint64 { return s.snapshot.GetMetadata().GetIndex() }

// term returns the term of the entry at index i, if the log holds it.
func (s *state) term(i uint64) (uint64, bool) {
	if s.snapshot != nil && i == s.snapIndex() {
		return s.snapshot.GetMetadata().GetTerm(), true
	}
	if len(s.entries) == 0 {
		return 0, false
	}
	first := s.entries[0].GetIndex()
	if i < first || i-first >= uint64(len(s.entries)) {
		return 0, false
	}
	return s.entries[i-first].GetTerm(), true
}

// applySnapshot installs snap. Entries it covers go. Entries after it stay
// only if the log agrees with the snapshot at its index (a local
// compaction); a snapshot received from the leader replaces a log that
// disagrees (raft only sends one then), as raft.MemoryStorage does.
func (s *state) applySnapshot(snap *pb.Snapshot) {
	idx, term := snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
	t, ok := s.term(idx)
	s.snapshot = snap
	if !ok || t != term {
		s.entries = nil
		return
	}
	s.entries = slices.DeleteFunc(slices.Clone(s.entries), func(e *pb.Entry) bool { return e.GetIndex() <= idx })
}

// appendEntry applies raft's rule: a new entry replaces every persisted
// entry from its index on. It never writes into the backing array of a
// slice it did not allocate past the current length, so a shallow copy of
// state (Save validates a Ready on one) is not disturbed.
func (s *state) appendEntry(e *pb.Entry) error {
	i := e.GetIndex()
	if s.snapshot != nil && i <= s.snapIndex() {
		return nil // covered by the snapshot
	}
	next := s.snapIndex() + 1
	if len(s.entries) > 0 {
		next = s.entries[len(s.entries)-1].GetIndex() + 1
	}
	switch {
	case i > next:
		// raft.MemoryStorage would panic on the gap at restart.
		return fmt.Errorf("entry %d leaves a gap after index %d", i, next-1)
	case i < next:
		k := i - s.entries[0].GetIndex() // i > snapIndex, so within entries
		s.entries = slices.Clip(s.entries[:k])
	}
	s.entries = append(s.entries, e)
	return nil
}

// apply applies one decoded record.
func (s *state) apply(r record) error {
	switch r.typ {
	case recHardState:
		hs := &pb.HardState{}
		if err := proto.Unmarshal(r.payload, hs); err != nil {
			return fmt.Errorf("hardstate: %w", err)
		}
		s.hardState = hs
	case recEntry:
		e := &pb.Entry{}
		if err := proto.Unmarshal(r.payload, e); err != nil {
			return fmt.Errorf("entry: %w", err)
		}
		return s.appendEntry(e)
	case recSnapshot:
		snap := &pb.Snapshot{}
		if err := proto.Unmarshal(r.payload, snap); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		s.applySnapshot(snap)
	case recRevoked:
		v, err := decodeUint64(r.payload)
		if err != nil {
			return fmt.Errorf("revoked: %w", err)
		}
		// The revoked token only grows; max makes replay indifferent
		// to a stale value.
		s.revoked = max(s.revoked, v)
	default:
		return fmt.Errorf("unexpected %s record inside a batch", r.typ)
	}
	return nil
}

// replayed is the outcome of reading one segment.
type replayed struct {
	st state
	// good is the length of the valid prefix; anything after it is a torn
	// tail (tornReason says why) to truncate before appending.
	good       int64
	tornReason string
	batches    int
}

// replaySegment parses a whole segment file. name is used in errors.
func replaySegment(name string, data []byte, seq uint64) (*replayed, error) {
	corrupt := func(off int, format string, args ...any) error {
		return fmt.Errorf("%w: %s: offset %d: %s", ErrCorrupt, name, off, fmt.Sprintf(format, args...))
	}
	// The header is written before the file gets its name, so it is
	// never torn: any damage is corruption.
	r, n, err := decodeRecord(data)
	if err != nil {
		return nil, corrupt(0, "segment header: %v", err)
	}
	if r.typ != recSegment {
		return nil, corrupt(0, "first record is %s, not a segment header", r.typ)
	}
	h, err := decodeSegmentHeader(r.payload)
	if err != nil {
		return nil, corrupt(0, "%v", err)
	}
	if h.seq != seq {
		return nil, corrupt(0, "segment header says sequence %d, file name says %d", h.seq, seq)
	}
	out := &replayed{}
	off := n
	for off < len(data) {
		next, reason, err := replayBatch(&out.st, data, off)
		if err != nil {
			return nil, corrupt(next, "%v", err)
		}
		if reason != "" {
			out.tornReason = reason
			break
		}
		off = next
		out.batches++
	}
	out.good = int64(off)
	return out, nil
}

// replayBatch applies the batch at off and returns the offset after it.
// A non-empty reason means the batch is a torn final write, not applied;
// an error (with the offset it concerns) means corruption.
//
// The writer keeps one invariant that makes this decidable: it writes a
// batch only after everything before it is on disk (wal.go syncs a
// previous unsynced batch first). So only the final batch can be damaged
// by a crash; damage in a batch followed by more data is the medium's.
func replayBatch(st *state, data []byte, off int) (int, string, error) {
	r, n, err := decodeRecord(data[off:])
	if err == nil && r.typ != recBatch {
		return off, "", fmt.Errorf("%s record where a batch should start", r.typ)
	}
	var bh batchHeader
	if err == nil {
		if bh, err = decodeBatchHeader(r.payload); err != nil {
			return off, "", err
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, errShort):
			return off, "batch header cut short", nil
		case laterBatch(data, off+1) >= 0:
			return off, "", fmt.Errorf("batch header: %v, and valid batches follow", err)
		default:
			// Nothing recognisable follows: the first page of the
			// final write never reached the disk.
			return off, fmt.Sprintf("unreadable final batch header (%v)", err), nil
		}
	}
	start := off + n
	end := start + int(bh.bodyLen)
	if end > len(data) || end < start {
		return off, fmt.Sprintf("final batch cut short (%d of %d bytes)", len(data)-start, bh.bodyLen), nil
	}
	last := end == len(data)
	// Decode the whole body before applying any of it: a Save is all or
	// nothing.
	recs := make([]record, 0, bh.count)
	offs := make([]int, 0, bh.count)
	for p := start; p < end; {
		r, n, err := decodeRecord(data[p:end])
		if err != nil {
			if last {
				return off, fmt.Sprintf("final batch damaged at offset %d (%v)", p, err), nil
			}
			return p, "", err
		}
		recs, offs = append(recs, r), append(offs, p)
		p += n
	}
	if uint32(len(recs)) != bh.count {
		return off, "", fmt.Errorf("batch holds %d records, its header says %d", len(recs), bh.count)
	}
	for i, r := range recs {
		if err := st.apply(r); err != nil {
			return offs[i], "", err
		}
	}
	return end, "", nil
}

// laterBatch returns the offset of the first valid batch record at or
// after from, or -1. Used only on damage, so a byte-wise scan is fine.
func laterBatch(data []byte, from int) int {
	for p := from; p+headerSize <= len(data); p++ {
		if r, _, err := decodeRecord(data[p:]); err == nil && r.typ == recBatch {
			return p
		}
	}
	return -1
}
