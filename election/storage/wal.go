package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segmentSuffix = ".wal"
	tmpSuffix     = ".tmp"
)

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentSuffix) }

// parseSegmentName returns the sequence number of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil
}

// listSegments returns the sequence numbers of the segments in dir, oldest
// first, and the names of leftover temporary files.
func listSegments(dir string) (seqs []uint64, tmps []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: list %s: %w", dir, err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			tmps = append(tmps, e.Name())
		} else if seq, ok := parseSegmentName(e.Name()); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, tmps, nil
}

// syncDir makes a create, rename or remove in dir durable: the entry lives
// in the directory, which has its own metadata to flush.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: open directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: sync directory %s: %w", dir, err)
	}
	return nil
}

// segment is the live segment, open for appending.
type segment struct {
	path string
	seq  uint64
	f    *os.File
	size int64
	// dirty: the last batch was written without fsync. The next batch
	// syncs it first, so that at most the final batch of a segment can
	// ever be torn; replay.go relies on that to tell a torn tail from
	// corruption.
	dirty bool
}

// createSegment writes a new segment holding the header and, if base is
// non-nil, one batch, under a temporary name; fsyncs it; renames it into
// place and fsyncs the directory. A segment with its final name is thus
// always complete up to its base batch.
func createSegment(dir string, seq uint64, base []byte) (*segment, error) {
	path := filepath.Join(dir, segmentName(seq))
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", tmp, err)
	}
	buf := appendRecord(nil, recSegment, segmentHeader{seq: seq}.encode())
	buf = append(buf, base...)
	fail := func(err error) (*segment, error) {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil, err
	}
	if _, err := f.Write(buf); err != nil {
		return fail(fmt.Errorf("storage: write %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("storage: sync %s: %w", tmp, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("storage: rename %s: %w", tmp, err))
	}
	// The descriptor follows the rename, so it stays the append handle.
	if err := syncDir(dir); err != nil {
		// The new segment may or may not survive a crash, and Open
		// would prefer it to the old one if it did: neither can be
		// written safely any more.
		_ = f.Close()
		return nil, fmt.Errorf("%w: %w", errBroken, err)
	}
	// The file offset is already at the end of what was written.
	return &segment{path: path, seq: seq, f: f, size: int64(len(buf))}, nil
}

// openSegment opens an existing segment for appending after its first
// good bytes, truncating a torn tail.
func openSegment(dir string, seq uint64, good int64) (*segment, error) {
	path := filepath.Join(dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("storage: stat %s: %w", path, err)
	}
	if fi.Size() != good {
		if err := f.Truncate(good); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("storage: truncate %s to %d: %w", path, good, err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("storage: sync %s: %w", path, err)
		}
	}
	if _, err := f.Seek(good, 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("storage: seek %s: %w", path, err)
	}
	return &segment{path: path, seq: seq, f: f, size: good}, nil
}

// errBroken: an earlier write or fsync failed. After a failed fsync the
// kernel may have dropped the dirty pages while marking them clean, so no
// later fsync can vouch for them; only a restart (replaying what is really
// on disk) is safe.
var errBroken = errors.New("storage: write or fsync failed, store disabled until a restart replays what is on disk")

// appendBatch writes one encoded batch with a single write and, if sync,
// fsyncs it. On error the segment must not be used again unless the
// returned error is errors.Is(err, errRolledBack).
func (s *segment) appendBatch(batch []byte, sync bool) error {
	if s.dirty {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("%w: sync %s: %w", errBroken, s.path, err)
		}
		s.dirty = false
	}
	if n, err := s.f.Write(batch); err != nil {
		// A partial batch in the middle of the segment would read as
		// corruption later; cut it off so the segment stays valid.
		if n > 0 {
			if terr := s.f.Truncate(s.size); terr != nil {
				return fmt.Errorf("%w: write %s: %w (and truncating the partial write: %v)", errBroken, s.path, err, terr)
			}
			if _, serr := s.f.Seek(s.size, 0); serr != nil {
				return fmt.Errorf("%w: write %s: %w (and seeking back: %v)", errBroken, s.path, err, serr)
			}
		}
		return fmt.Errorf("%w: write %s: %w", errRolledBack, s.path, err)
	}
	s.size += int64(len(batch))
	if !sync {
		s.dirty = true
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("%w: sync %s: %w", errBroken, s.path, err)
	}
	return nil
}

// errRolledBack: the write failed but the segment is unchanged (e.g. the
// disk is full); the Save failed and may be retried.
var errRolledBack = errors.New("storage: write failed and was rolled back")

func (s *segment) close() error {
	var err error
	if s.dirty {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: close %s: %w", s.path, err)
	}
	return nil
}
