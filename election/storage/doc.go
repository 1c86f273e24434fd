// Package storage makes one node's election state durable: the raft
// HardState, log entries and snapshot, and the highest revoked lease token
// that election.Ready asks the daemon to persist. It lives at the daemon's
// edge so that package election stays free of I/O.
//
// # Layout
//
// Everything lives in <state_directory>/election:
//
//	LOCK                  flock'd while a Store is open (holds the owner's pid)
//	0000000000000007.wal  the live segment (hexadecimal sequence number)
//	*.wal.tmp             a compaction that did not finish (removed on Open)
//
// Every segment is self-contained: it begins with a header record and a
// batch holding the complete state at the time it was written, and later
// Saves append batches to it. Only the newest segment is ever read; an
// older one still present means a crash between the rename of its
// successor and its removal, and Open deletes it. New segments are born by
// write-temp, fsync, rename, fsync directory, so a segment that has its
// final name is complete up to the end of its base batch.
//
// # Records
//
// A record is a 16-byte header and a payload (record.go):
//
//	0:4   payload length (little endian)
//	4:8   CRC-32C (Castagnoli) of the payload
//	8     record type
//	9:12  zero
//	12:16 CRC-32C of bytes 0:12
//
// The header carries its own checksum so that a bit flip in a length field
// is reported as corruption instead of looking like a record cut short by
// a crash (which would silently drop every later record). Payloads are the
// protobuf encodings of raftpb.HardState, raftpb.Entry and raftpb.Snapshot
// (one Entry per record), eight little-endian bytes for the revoked token,
// and a fixed header for segments.
//
// One Save is one batch: a batch record (body length and record count)
// followed by the Save's records, written with a single write. Replay
// applies a batch only once all of it has been read and checked, so a
// crash in the middle of a Save loses that whole Save and never leaves,
// say, a snapshot without the HardState whose commit index covers it
// (raft refuses to start from that).
//
// # Replay and damage
//
// Replay (replay.go) rebuilds the latest HardState and Snapshot, the
// entries (each entry replaces every persisted entry from its index on;
// entries covered by a snapshot are dropped, and all of them when the
// snapshot disagrees with the log, as with one received from the leader)
// and the highest revoked
// token. The writer never starts a batch before the previous one is on
// disk (an unsynced batch is fsynced when the next Save comes), so a crash
// can only damage the final batch. Damage there is a torn write: a short
// header or body, a checksum mismatch in the final batch, or an unreadable
// batch record with nothing valid after it (a zero-filled tail). It is
// truncated with a warning: the final batch is either a Save whose fsync
// never returned or one that did not ask for fsync, and neither raft nor
// the lease relies on those. Any other damage is an error wrapping ErrCorrupt that
// names the file and offset: silently dropping a batch in the middle
// could forget a vote or a revoked token, which is exactly what raft and
// the lease rely on.
//
// # Durability
//
// Save fsyncs when Ready.MustSync (raft's rule) or Ready.RevokedChanged
// (a Revoked reply promises that the voter will never grant the token
// again, even after a crash). After a failed write or fsync the Store
// refuses further Saves: the kernel may have dropped dirty pages, so the
// only safe continuation is a restart that replays what is really on disk.
//
// # Compaction
//
// When a Save carries a snapshot, or the live segment has grown well past
// what a rewrite would take, compact.go writes a new segment holding only
// the current state and removes the old one.
package storage
