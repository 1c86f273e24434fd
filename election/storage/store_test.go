package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ramd/ramd/election"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func ent(i, t uint64, data string) *pb.Entry {
	return &pb.Entry{Index: new(i), Term: new(t), Type: pb.EntryNormal.Enum(), Data: []byte(data)}
}

func hs(term, vote, commit uint64) *pb.HardState {
	return &pb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func snap(i, t uint64, data string) *pb.Snapshot {
	return &pb.Snapshot{Data: []byte(data), Metadata: &pb.SnapshotMetadata{Index: new(i), Term: new(t), ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}}
}

// model is the reference: exactly what the election harness records for
// a Ready (harness_test.go processReady), with revoked kept at its max.
func model(p *election.Persisted, rd election.Ready) {
	if rd.HardState != nil {
		p.HardState = rd.HardState
	}
	if rd.Snapshot != nil {
		p.Snapshot, p.Entries = rd.Snapshot, nil
	}
	if len(rd.Entries) > 0 {
		first := rd.Entries[0].GetIndex()
		p.Entries = slices.DeleteFunc(p.Entries, func(e *pb.Entry) bool { return e.GetIndex() >= first })
		p.Entries = append(p.Entries, rd.Entries...)
	}
	if rd.RevokedChanged {
		p.Revoked = max(p.Revoked, rd.Revoked)
	}
}

func equalPersisted(t *testing.T, got, want *election.Persisted) {
	t.Helper()
	if !proto.Equal(got.HardState, want.HardState) {
		t.Errorf("HardState = %v, want %v", got.HardState, want.HardState)
	}
	if !proto.Equal(got.Snapshot, want.Snapshot) {
		t.Errorf("Snapshot = %v, want %v", got.Snapshot, want.Snapshot)
	}
	if len(got.Entries) != len(want.Entries) {
		t.Errorf("%d entries, want %d: %v", len(got.Entries), len(want.Entries), got.Entries)
	} else {
		for i := range got.Entries {
			if !proto.Equal(got.Entries[i], want.Entries[i]) {
				t.Errorf("entry %d = %v, want %v", i, got.Entries[i], want.Entries[i])
			}
		}
	}
	if got.Revoked != want.Revoked {
		t.Errorf("Revoked = %d, want %d", got.Revoked, want.Revoked)
	}
}

// readys is a history touching every rule: appends, a suffix overwrite,
// unsynced commits, revokes (one stale), a snapshot that replaces a
// disagreeing log, and an overwrite after it.
func readys() []election.Ready {
	return []election.Ready{
		{HardState: hs(1, 1, 0), Entries: []*pb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c")}, MustSync: true},
		{HardState: hs(2, 2, 2), Entries: []*pb.Entry{ent(3, 2, "c2"), ent(4, 2, "d"), ent(5, 2, "e")}, MustSync: true},
		{Revoked: 4, RevokedChanged: true},
		{HardState: hs(2, 2, 4)},
		{Entries: []*pb.Entry{ent(6, 2, "f"), ent(7, 2, "g")}, MustSync: true},
		{Revoked: 3, RevokedChanged: true},
		{HardState: hs(2, 2, 6)},
		{HardState: hs(3, 0, 10), Snapshot: snap(10, 3, `{"token":2}`), Entries: []*pb.Entry{ent(11, 3, "k"), ent(12, 3, "l")}, MustSync: true},
		{HardState: hs(4, 0, 11), Entries: []*pb.Entry{ent(12, 4, "l2"), ent(13, 4, "m")}, MustSync: true, Revoked: 5, RevokedChanged: true},
	}
}

func mustOpen(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	if _, ok := s.Load(); ok {
		t.Fatal("a new store reports persisted state")
	}
	var want election.Persisted
	for i, rd := range readys() {
		if err := s.Save(rd); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
		model(&want, rd)
		got, ok := s.Load()
		if !ok {
			t.Fatalf("after save %d: Load reports nothing", i)
		}
		equalPersisted(t, got, &want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir)
	defer s.Close()
	got, ok := s.Load()
	if !ok {
		t.Fatal("reopened store reports nothing")
	}
	equalPersisted(t, got, &want)
}

func TestEmptySaveWritesNothing(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	size := s.seg.size
	if err := s.Save(election.Ready{MustSync: true, Messages: []election.Message{{}}}); err != nil {
		t.Fatal(err)
	}
	if s.seg.size != size {
		t.Fatalf("an empty Ready grew the log from %d to %d bytes", size, s.seg.size)
	}
}

// A snapshot that agrees with the log (a local compaction) keeps the
// entries after it.
func TestSnapshotKeepsLaterEntries(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	for _, rd := range []election.Ready{
		{HardState: hs(1, 1, 4), Entries: []*pb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c"), ent(4, 1, "d")}, MustSync: true},
		{Snapshot: snap(2, 1, "s")},
	} {
		if err := s.Save(rd); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = mustOpen(t, dir)
	defer s.Close()
	got, _ := s.Load()
	equalPersisted(t, got, &election.Persisted{HardState: hs(1, 1, 4), Snapshot: snap(2, 1, "s"), Entries: []*pb.Entry{ent(3, 1, "c"), ent(4, 1, "d")}})
}

func TestSaveRejectsGap(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	if err := s.Save(election.Ready{Entries: []*pb.Entry{ent(1, 1, "a")}}); err != nil {
		t.Fatal(err)
	}
	size := s.seg.size
	err := s.Save(election.Ready{Entries: []*pb.Entry{ent(3, 1, "c")}})
	if err == nil || !strings.HasPrefix(err.Error(), "storage:") {
		t.Fatalf("gap accepted: %v", err)
	}
	if s.seg.size != size {
		t.Fatal("a refused Ready reached the disk")
	}
	if err := s.Save(election.Ready{Entries: []*pb.Entry{ent(2, 1, "b")}}); err != nil {
		t.Fatalf("store unusable after a refused Ready: %v", err)
	}
}

// saveAll saves rds and returns the live segment's path with its size
// before the last Save.
func saveAll(t *testing.T, dir string, rds []election.Ready) (path string, before int64) {
	t.Helper()
	s := mustOpen(t, dir)
	for i, rd := range rds {
		before = s.seg.size
		if err := s.Save(rd); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	path = s.seg.path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, before
}

func TestTornTail(t *testing.T) {
	rds := readys()
	var want election.Persisted
	for _, rd := range rds[:len(rds)-1] {
		model(&want, rd)
	}
	dir := t.TempDir()
	path, before := saveAll(t, dir, rds)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := s.Load()
		equalPersisted(t, got, &want)
		if s.seg.size != before {
			t.Errorf("%s: segment is %d bytes after open, want %d", name, s.seg.size, before)
		}
		// The truncated log must take appends and replay them.
		if err := s.Save(election.Ready{Revoked: 9, RevokedChanged: true}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = mustOpen(t, dir)
		if got, _ := s.Load(); got.Revoked != 9 {
			t.Errorf("%s: append after truncation lost", name)
		}
		s.Close()
		if t.Failed() {
			t.FailNow()
		}
	}
	for cut := before; cut < int64(len(full)); cut++ {
		check("truncated at "+itoa(cut), slices.Clone(full[:cut]))
	}
	// Pages of the final write that never reached the disk read as zeros.
	for z := before; z < int64(len(full)); z++ {
		d := slices.Clone(full)
		clear(d[z:])
		if slices.Equal(d, full) {
			continue // already zero there: the batch is intact
		}
		check("zeroed from "+itoa(z), d)
	}
	// A checksum mismatch within the final batch is a torn write too.
	for f := before; f < int64(len(full)); f++ {
		d := slices.Clone(full)
		d[f] ^= 0x40
		check("flipped at "+itoa(f), d)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestMidLogCorruption(t *testing.T) {
	rds := readys()[:7] // no snapshot: everything stays in the first segment
	dir := t.TempDir()
	s := mustOpen(t, dir)
	var bounds []int64 // segment size after each Save
	for _, rd := range rds {
		if err := s.Save(rd); err != nil {
			t.Fatal(err)
		}
		bounds = append(bounds, s.seg.size)
	}
	path := s.seg.path
	s.Close()
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every byte of the segment header and of the second batch.
	var offs []int64
	for o := int64(0); o < bounds[0]-int64(len(encodeBatch(mustRecs(t, rds[0])))); o++ {
		offs = append(offs, o)
	}
	for o := bounds[0]; o < bounds[1]; o++ {
		offs = append(offs, o)
	}
	for _, o := range offs {
		d := slices.Clone(full)
		d[o] ^= 0x01
		if err := os.WriteFile(path, d, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Options{Dir: dir})
		if err == nil {
			s.Close()
			t.Fatalf("flip at offset %d: Open succeeded", o)
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.HasPrefix(err.Error(), "storage:") {
			t.Fatalf("flip at offset %d: error %q does not name %s as corrupt", o, err, path)
		}
	}
	if err := os.WriteFile(path, full, 0o600); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir).Close()
}

func mustRecs(t *testing.T, rd election.Ready) []record {
	recs, err := readyRecords(rd.HardState, rd.Snapshot, rd.Entries, rd.Revoked, rd.RevokedChanged)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func segments(t *testing.T, dir string) []uint64 {
	t.Helper()
	seqs, _, err := listSegments(filepath.Join(dir, SubDir))
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, CompactBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var want election.Persisted
	term := uint64(1)
	for i := uint64(1); i <= 400; i++ {
		if i%50 == 0 {
			term++ // overwrite the last few entries under a new term
		}
		first := i
		if i%50 == 0 {
			first = i - 3
		}
		var ents []*pb.Entry
		for j := first; j <= i; j++ {
			ents = append(ents, ent(j, term, strings.Repeat("x", 40)))
		}
		rd := election.Ready{HardState: hs(term, 1, i-1), Entries: ents, MustSync: i%3 == 0}
		if i%7 == 0 {
			rd.Revoked, rd.RevokedChanged = i, true
		}
		if err := s.Save(rd); err != nil {
			t.Fatal(err)
		}
		model(&want, rd)
	}
	if seqs := segments(t, dir); len(seqs) != 1 || seqs[0] == 1 {
		t.Fatalf("segments after size-triggered compaction: %v", seqs)
	}
	got, _ := s.Load()
	equalPersisted(t, got, &want)

	// A snapshot compacts immediately and drops the covered entries.
	seq := s.seg.seq
	var term390 uint64
	for _, e := range want.Entries {
		if e.GetIndex() == 390 {
			term390 = e.GetTerm()
		}
	}
	rd := election.Ready{Snapshot: snap(390, term390, "state")}
	if err := s.Save(rd); err != nil {
		t.Fatal(err)
	}
	want.Snapshot = rd.Snapshot
	want.Entries = slices.DeleteFunc(want.Entries, func(e *pb.Entry) bool { return e.GetIndex() <= 390 })
	if seqs := segments(t, dir); len(seqs) != 1 || seqs[0] != seq+1 {
		t.Fatalf("segments after snapshot: %v, want [%d]", seqs, seq+1)
	}
	if s.seg.size > 4<<10 {
		t.Fatalf("compacted segment is %d bytes", s.seg.size)
	}
	s.Close()

	// Leftovers of a crash mid-compaction: an older segment and a
	// temporary file. Open ignores and removes both.
	edir := filepath.Join(dir, SubDir)
	if err := os.WriteFile(filepath.Join(edir, segmentName(1)), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(edir, segmentName(seq+2)+tmpSuffix), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir)
	defer s.Close()
	got, _ = s.Load()
	equalPersisted(t, got, &want)
	if seqs := segments(t, dir); len(seqs) != 1 || seqs[0] != seq+1 {
		t.Fatalf("segments after reopen: %v", seqs)
	}
	if _, tmps, _ := listSegments(edir); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	_, err := Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "state_directory") || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second Open: %v", err)
	}
	t.Log(err)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir).Close()
}

func TestClosed(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(election.Ready{Revoked: 1, RevokedChanged: true}); err == nil {
		t.Fatal("Save on a closed store succeeded")
	}
}
