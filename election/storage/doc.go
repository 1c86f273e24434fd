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
// One Save is one batch: its records followed by a batch-end record,
// written with a single write. Replay applies a batch only once it has
// seen its end, so a crash in the middle of a Save loses that whole Save
// and never leaves, say, a snapshot without the HardState whose commit
// index covers it (raft refuses to start from that).
//
// # Replay and damage
//
// Replay (replay.go) rebuilds the latest HardState and Snapshot, the
// entries (each entry replaces every persisted entry from its index on;
// entries covered by a snapshot are dropped) and the highest revoked
// token. Damage that runs to the end of the segment is a torn write: a
// short header or payload, a checksum mismatch on the final record, a
// zero-filled tail, or a batch without its end. It is truncated away with
// a warning, because a Save that did not return was never acknowledged.
// Any other damage is an error naming the file and offset: silently
// dropping a record in the middle could forget a vote or a revoked token,
// which is exactly what raft and the lease rely on.
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
