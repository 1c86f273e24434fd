package pg

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseLSN parses PostgreSQL's text form of a WAL position ("16/B374D848").
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("pg: invalid LSN %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("pg: invalid LSN %q", s)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("pg: invalid LSN %q", s)
	}
	return LSN(h<<32 | l), nil
}

// parseNullLSN parses a nullable LSN column; NULL is 0 ("no position").
func parseNullLSN(s *string) (LSN, error) {
	if s == nil {
		return 0, nil
	}
	return ParseLSN(*s)
}

// lagBytes is how far lsn is behind ref, 0 when it is not behind (the two
// may be sampled a moment apart) or unknown.
func lagBytes(ref, lsn LSN) uint64 {
	if lsn == 0 || ref <= lsn {
		return 0
	}
	return uint64(ref - lsn)
}
