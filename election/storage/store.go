package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ramd/ramd/election"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Options configures a Store.
type Options struct {
	// Dir is the node's [cluster] state_directory; the store lives in
	// Dir/election.
	Dir string
	// Logger receives torn-tail and compaction notices; nil discards.
	Logger *slog.Logger
	// CompactBytes is the segment size beyond which the log is rewritten
	// (0: 4 MiB). Tests lower it.
	CompactBytes int64
}

// Store is one node's durable election state. Its methods are safe for
// concurrent use, though the daemon calls Save from its one loop.
type Store struct {
	mu           sync.Mutex
	dir          string
	log          *slog.Logger
	lock         *dirLock
	seg          *segment
	st           state
	baseSize     int64 // size of the live segment when it was written
	compactBytes int64
	broken       error
	closed       bool
}

// SubDir is the directory under the state directory that the store owns.
const SubDir = "election"

// Open locks and replays the store in opts.Dir/election, creating it if
// missing. A torn final write is truncated with a warning; any other
// damage is an error wrapping ErrCorrupt that names the file and offset.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("storage: no state directory")
	}
	s := &Store{dir: filepath.Join(opts.Dir, SubDir), log: opts.Logger, compactBytes: opts.CompactBytes}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.compactBytes <= 0 {
		s.compactBytes = defaultCompactBytes
	}
	if err := ensureDir(s.dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(s.dir)
	if err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		_ = lock.unlock()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// ensureDir creates dir if needed and makes its entry durable in the
// parent, so a fresh store does not vanish with its parent's dirty
// metadata after a crash.
func ensureDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("storage: %s is not a directory", dir)
		}
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("storage: create %w", err)
	}
	return syncDir(filepath.Dir(dir))
}

// load replays the newest segment (every segment is self-contained, see
// doc.go) and removes what is obsolete.
func (s *Store) load() error {
	seqs, tmps, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	removed := false
	for _, t := range tmps {
		// An unfinished compaction: the segment it was replacing is
		// still there and complete.
		s.log.Warn("storage: removing an unfinished segment", "path", filepath.Join(s.dir, t))
		if err := os.Remove(filepath.Join(s.dir, t)); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		removed = true
	}
	if len(seqs) == 0 {
		seg, err := createSegment(s.dir, 1, nil)
		if err != nil {
			return err
		}
		s.seg, s.baseSize = seg, seg.size
		return nil
	}
	newest := seqs[len(seqs)-1]
	path := filepath.Join(s.dir, segmentName(newest))
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("storage: read %w", err)
	}
	rp, err := replaySegment(path, data, newest)
	if err != nil {
		return err
	}
	if rp.tornReason != "" {
		// Only the final batch can be torn (wal.go syncs every batch
		// before writing the next), and it was either unsynced by
		// request or its fsync never returned: nothing promised is lost.
		s.log.Warn("storage: truncating a torn write at the end of the election log",
			"path", path, "offset", rp.good, "dropped_bytes", int64(len(data))-rp.good, "reason", rp.tornReason)
	}
	seg, err := openSegment(s.dir, newest, rp.good)
	if err != nil {
		return err
	}
	s.seg, s.st = seg, rp.st
	// Estimate what a rewrite would produce, for the size trigger.
	if base, err := baseBatch(&s.st); err == nil {
		s.baseSize = int64(len(base)) + headerSize + int64(len(segmentHeader{}.encode()))
	}
	for _, seq := range seqs[:len(seqs)-1] {
		// Left behind by a crash between a compaction's rename and its
		// cleanup; the newest segment already holds everything.
		p := filepath.Join(s.dir, segmentName(seq))
		s.log.Info("storage: removing an obsolete segment", "path", p)
		if err := os.Remove(p); err != nil {
			_ = seg.close()
			return fmt.Errorf("storage: %w", err)
		}
		removed = true
	}
	if removed {
		if err := syncDir(s.dir); err != nil {
			_ = seg.close()
			return err
		}
	}
	return nil
}

// Load returns what was persisted; ok is false for a brand-new node
// (nothing was ever saved), which should start with Config.Peers instead.
// The result is a deep copy.
func (s *Store) Load() (*election.Persisted, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.empty() {
		return &election.Persisted{}, false
	}
	p := &election.Persisted{Revoked: s.st.revoked}
	if s.st.hardState != nil {
		p.HardState = proto.Clone(s.st.hardState).(*pb.HardState)
	}
	if s.st.snapshot != nil {
		p.Snapshot = proto.Clone(s.st.snapshot).(*pb.Snapshot)
	}
	p.Entries = make([]*pb.Entry, len(s.st.entries))
	for i, e := range s.st.entries {
		p.Entries[i] = proto.Clone(e).(*pb.Entry)
	}
	return p, true
}

// Save persists the HardState, Entries, Snapshot and (when RevokedChanged)
// Revoked of rd as one atomic batch, before the daemon sends rd.Messages.
// It fsyncs when rd.MustSync (raft's rule) or rd.RevokedChanged (a Revoked
// reply promises never to grant the token again, which must survive a
// crash). A Ready with nothing to persist is a no-op.
//
// After an error other than a rolled-back write the Store refuses all
// further Saves; the daemon should exit and let a restart replay the disk.
func (s *Store) Save(rd election.Ready) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("storage: save on a closed store")
	case s.broken != nil:
		return s.broken
	}
	if rd.HardState == nil && rd.Snapshot == nil && len(rd.Entries) == 0 && !rd.RevokedChanged {
		return nil
	}
	// Apply to a copy first: an invalid Ready is refused before anything
	// reaches the disk, where replay would trip over it forever.
	next := s.st
	if rd.Snapshot != nil {
		next.applySnapshot(rd.Snapshot)
	}
	for _, e := range rd.Entries {
		if err := next.appendEntry(e); err != nil {
			return fmt.Errorf("storage: save: %w", err)
		}
	}
	if rd.HardState != nil {
		// Cloned because the store keeps it beyond this call; raft
		// treats entries and snapshots as immutable, so those are kept
		// as they are.
		next.hardState = proto.Clone(rd.HardState).(*pb.HardState)
	}
	if rd.RevokedChanged {
		next.revoked = max(next.revoked, rd.Revoked)
	}
	recs, err := readyRecords(rd.HardState, rd.Snapshot, rd.Entries, rd.Revoked, rd.RevokedChanged)
	if err != nil {
		return err
	}
	if err := s.seg.appendBatch(encodeBatch(recs), rd.MustSync || rd.RevokedChanged); err != nil {
		if !errors.Is(err, errRolledBack) {
			s.broken = err
		}
		return err
	}
	s.st = next
	switch {
	case rd.Snapshot != nil:
		return s.maybeCompact("snapshot saved")
	case s.seg.size > s.compactBytes && s.seg.size > 2*s.baseSize:
		return s.maybeCompact(fmt.Sprintf("segment reached %d bytes", s.seg.size))
	}
	return nil
}

// maybeCompact compacts; a failure before the new segment took over (say,
// a full disk) leaves the old log in charge and only postpones the next
// attempt, because the Save itself is already durable.
func (s *Store) maybeCompact(why string) error {
	err := s.compact(why)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errBroken):
		s.broken = err
		return err
	default:
		s.log.Warn("storage: compaction failed; keeping the current segment", "err", err)
		s.baseSize = s.seg.size
		return nil
	}
}

// Compact rewrites the log now (normally Save decides when).
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("storage: compact on a closed store")
	case s.broken != nil:
		return s.broken
	}
	err := s.compact("requested")
	if errors.Is(err, errBroken) {
		s.broken = err
	}
	return err
}

// Dir returns the directory the store owns (state_directory/election).
func (s *Store) Dir() string { return s.dir }

// Close syncs anything unsynced, closes the log and releases the lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return errors.Join(s.seg.close(), s.lock.unlock())
}
