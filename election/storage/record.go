package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// recordType says what a record's payload is.
type recordType uint8

const (
	recSegment   recordType = 1 // segmentHeader; the first record of a file
	recHardState recordType = 2 // raftpb.HardState
	recEntry     recordType = 3 // raftpb.Entry
	recSnapshot  recordType = 4 // raftpb.Snapshot
	recRevoked   recordType = 5 // uint64, little endian
	recBatch     recordType = 6 // batchHeader; starts every batch
)

func (t recordType) String() string {
	switch t {
	case recSegment:
		return "segment"
	case recHardState:
		return "hardstate"
	case recEntry:
		return "entry"
	case recSnapshot:
		return "snapshot"
	case recRevoked:
		return "revoked"
	case recBatch:
		return "batch"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

const (
	headerSize = 16
	// maxPayload bounds a record so that a damaged length can never make
	// replay allocate gigabytes. Election snapshots are a few kilobytes
	// of JSON and entries are commands; 64 MiB is far beyond either.
	maxPayload = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is one decoded record; payload aliases the input buffer.
type record struct {
	typ     recordType
	payload []byte
}

// Decoding failures. errShort and the checksum errors may be a torn
// write if they run to the end of the segment; replay decides.
var (
	errShort       = errors.New("record cut short")
	errHeaderCRC   = errors.New("record header checksum mismatch")
	errPayloadCRC  = errors.New("record payload checksum mismatch")
	errBadHeader   = errors.New("malformed record header")
	errTooLarge    = errors.New("record larger than the limit")
	errUnknownType = errors.New("unknown record type")
)

// appendRecord appends the framed record to buf.
func appendRecord(buf []byte, typ recordType, payload []byte) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(payload, castagnoli))
	h[8] = byte(typ)
	binary.LittleEndian.PutUint32(h[12:16], crc32.Checksum(h[0:12], castagnoli))
	buf = append(buf, h[:]...)
	return append(buf, payload...)
}

// decodeRecord decodes the record at the start of b and returns it with
// its total size. It never panics and never allocates beyond b.
func decodeRecord(b []byte) (record, int, error) {
	if len(b) < headerSize {
		return record{}, 0, errShort
	}
	h := b[:headerSize]
	if crc32.Checksum(h[0:12], castagnoli) != binary.LittleEndian.Uint32(h[12:16]) {
		return record{}, 0, errHeaderCRC
	}
	if h[9] != 0 || h[10] != 0 || h[11] != 0 {
		return record{}, 0, errBadHeader
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n > maxPayload {
		return record{}, 0, fmt.Errorf("%w: %d bytes", errTooLarge, n)
	}
	typ := recordType(h[8])
	if typ < recSegment || typ > recBatch {
		return record{}, 0, fmt.Errorf("%w %d", errUnknownType, h[8])
	}
	end := headerSize + int(n)
	if len(b) < end {
		return record{}, 0, errShort
	}
	payload := b[headerSize:end]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(h[4:8]) {
		return record{}, 0, errPayloadCRC
	}
	return record{typ: typ, payload: payload}, end, nil
}

// segmentMagic identifies a segment file and its format version.
const segmentMagic = "ramd-election-wal/1"

// segmentHeader is the payload of the first record of every segment. The
// sequence number repeats the file name so that a renamed or copied file
// is noticed.
type segmentHeader struct {
	seq uint64
}

func (h segmentHeader) encode() []byte {
	b := make([]byte, 0, len(segmentMagic)+8)
	b = append(b, segmentMagic...)
	return binary.LittleEndian.AppendUint64(b, h.seq)
}

func decodeSegmentHeader(p []byte) (segmentHeader, error) {
	if len(p) != len(segmentMagic)+8 || string(p[:len(segmentMagic)]) != segmentMagic {
		return segmentHeader{}, fmt.Errorf("not a %s segment header", segmentMagic)
	}
	return segmentHeader{seq: binary.LittleEndian.Uint64(p[len(segmentMagic):])}, nil
}

// batchHeader is the payload of the record that starts a batch (one
// Save). It gives the batch's extent, so replay knows whether damage lies
// in the last write (a torn tail) or in one followed by later writes.
type batchHeader struct {
	bodyLen uint32 // bytes of records after the batch record
	count   uint32 // records in the body
}

const batchHeaderSize = 8

func (h batchHeader) encode() []byte {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, batchHeaderSize), h.bodyLen)
	return binary.LittleEndian.AppendUint32(b, h.count)
}

func decodeBatchHeader(p []byte) (batchHeader, error) {
	if len(p) != batchHeaderSize {
		return batchHeader{}, fmt.Errorf("%d-byte batch header, want %d", len(p), batchHeaderSize)
	}
	return batchHeader{bodyLen: binary.LittleEndian.Uint32(p[0:4]), count: binary.LittleEndian.Uint32(p[4:8])}, nil
}

func encodeUint64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func decodeUint64(p []byte) (uint64, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("%d-byte payload, want 8", len(p))
	}
	return binary.LittleEndian.Uint64(p), nil
}
