package api

import (
	"fmt"
	"math/bits"
	"strings"
)

// ParseLag parses a replication lag bound as Patroni's ?lag= accepts it:
// a number of bytes ("1048576") or a number with a unit ("16kB", "10MB",
// "1GB", "1TB"; base 1024). Units are matched case-insensitively, the
// trailing "B" is optional ("16k"), "B" alone means bytes, an "i" before it
// is tolerated ("16KiB"), and blanks around the number and unit are ignored.
// Only whole non-negative numbers are accepted, and values that overflow
// 64 bits are errors rather than wrapped.
func ParseLag(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, lagError(s)
	}
	var n uint64
	for _, c := range t[:i] {
		hi, lo := bits.Mul64(n, 10)
		if hi != 0 {
			return 0, lagOverflow(s)
		}
		var carry uint64
		n, carry = bits.Add64(lo, uint64(c-'0'), 0)
		if carry != 0 {
			return 0, lagOverflow(s)
		}
	}
	shift, ok := lagUnitShift(strings.TrimSpace(t[i:]))
	if !ok {
		return 0, lagError(s)
	}
	if shift > 0 && n > (^uint64(0))>>shift {
		return 0, lagOverflow(s)
	}
	return n << shift, nil
}

// lagUnitShift maps a unit to its power of two. The unit is lowered by hand
// so that no allocation happens on the hot path of a health check.
func lagUnitShift(u string) (uint, bool) {
	if len(u) > 3 {
		return 0, false
	}
	var buf [3]byte
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(u)]) {
	case "", "b":
		return 0, true
	case "k", "kb", "kib":
		return 10, true
	case "m", "mb", "mib":
		return 20, true
	case "g", "gb", "gib":
		return 30, true
	case "t", "tb", "tib":
		return 40, true
	}
	return 0, false
}

func lagError(s string) error {
	return fmt.Errorf("api: invalid lag %q: want a whole number of bytes or a size such as 16kB, 10MB, 1GB", s)
}

func lagOverflow(s string) error {
	return fmt.Errorf("api: invalid lag %q: too large", s)
}
