package storage

import (
	"errors"
	"fmt"
	"os"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// defaultCompactBytes: a segment larger than this (and than twice what a
// rewrite produced last time) is rewritten. The election log only grows by
// a few commands per failover plus HardState updates, so compaction by
// size is rare; it bounds replay time and disk use for a daemon that runs
// for years without a raft snapshot.
const defaultCompactBytes = 4 << 20

// encodeBatch frames records as one batch: a batch record giving the body
// length and count, then the records.
func encodeBatch(recs []record) []byte {
	body := 0
	for _, r := range recs {
		body += headerSize + len(r.payload)
	}
	buf := make([]byte, 0, headerSize+batchHeaderSize+body)
	buf = appendRecord(buf, recBatch, batchHeader{bodyLen: uint32(body), count: uint32(len(recs))}.encode())
	for _, r := range recs {
		buf = appendRecord(buf, r.typ, r.payload)
	}
	return buf
}

func marshal(typ recordType, m proto.Message) (record, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return record{}, fmt.Errorf("storage: encode %s: %w", typ, err)
	}
	return record{typ: typ, payload: b}, nil
}

// readyRecords are the records of one Save, in the order replay must apply
// them: the snapshot first (it may discard the log), then the entries
// after it, then the HardState (whose commit may point into both), then
// the revoked token.
func readyRecords(hs *pb.HardState, snap *pb.Snapshot, ents []*pb.Entry, revoked uint64, withRevoked bool) ([]record, error) {
	recs := make([]record, 0, len(ents)+3)
	if snap != nil {
		r, err := marshal(recSnapshot, snap)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	for _, e := range ents {
		r, err := marshal(recEntry, e)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	if hs != nil {
		r, err := marshal(recHardState, hs)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	if withRevoked {
		recs = append(recs, record{typ: recRevoked, payload: encodeUint64(revoked)})
	}
	return recs, nil
}

// baseBatch is the batch that opens a compacted segment: the whole state.
func baseBatch(st *state) ([]byte, error) {
	recs, err := readyRecords(st.hardState, st.snapshot, st.entries, st.revoked, st.revoked != 0)
	if err != nil {
		return nil, err
	}
	return encodeBatch(recs), nil
}

// compact rewrites the live segment as a new one holding only the current
// state, then removes the old one. Until the rename the old segment is
// untouched and remains the log; after it the new one is (Open reads only
// the newest segment), so a crash at any point loses nothing.
func (s *Store) compact(why string) error {
	base, err := baseBatch(&s.st)
	if err != nil {
		return err
	}
	old := s.seg
	seg, err := createSegment(s.dir, old.seq+1, base)
	if err != nil {
		return err
	}
	s.seg, s.baseSize = seg, seg.size
	// The old segment's content is all in the new one, which is synced;
	// a failure to sync or remove it only leaves an obsolete file that
	// the next Open deletes.
	if err := old.close(); err != nil {
		s.log.Warn("storage: closing the compacted segment", "err", err)
	}
	if err := os.Remove(old.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("storage: removing the compacted segment", "path", old.path, "err", err)
	} else if err := syncDir(s.dir); err != nil {
		s.log.Warn("storage: syncing after removing the compacted segment", "err", err)
	}
	s.log.Info("storage: compacted the election log", "reason", why, "segment", seg.path,
		"old_bytes", old.size, "new_bytes", seg.size, "entries", len(s.st.entries))
	return nil
}
