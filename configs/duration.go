package configs

import (
	"fmt"
	"strings"
	"time"
)

// Durations are written as Go duration strings ("250ms", "5s", "1m30s").
// A bare number is rejected, except 0: Patroni's loop_wait is in seconds,
// memberlist's Go fields in nanoseconds, other tools use milliseconds, so any
// unit we picked for "250" would be a silent factor-of-1000 surprise for
// someone. The error says how to write it instead.

// MarshalText writes the duration in the form UnmarshalText reads, so that
// Encode round-trips.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// UnmarshalText parses a Go duration string such as "250ms" or "5s".
// Negative durations are rejected: no ramd interval can be negative.
func (d *Duration) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if s == "" {
		return fmt.Errorf("configs: empty duration: write a number with a unit such as \"250ms\" or \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		if isDecimal(s) {
			return fmt.Errorf("configs: duration %q has no unit: write \"%sms\" or \"%ss\"", s, s, s)
		}
		return fmt.Errorf("configs: invalid duration %q: write a number with a unit such as \"250ms\", \"5s\" or \"1m30s\"", s)
	}
	if v < 0 {
		return fmt.Errorf("configs: duration %q is negative", s)
	}
	d.Duration = v
	return nil
}

// UnmarshalTOML implements toml.Unmarshaler. It exists (besides
// UnmarshalText) so that a TOML integer or boolean gets an error naming its
// real type instead of an odd message about its text form.
func (d *Duration) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		return d.UnmarshalText([]byte(x))
	case int64:
		if x == 0 {
			d.Duration = 0
			return nil
		}
		return fmt.Errorf("configs: bare number %d is not a duration: write \"%dms\" or \"%ds\" (a string with a unit)", x, x, x)
	default:
		return fmt.Errorf("configs: expected a duration string such as \"250ms\", got %s", describeTOML(v))
	}
}

// isDecimal reports whether s is an unsigned decimal number ("250", "1.5").
func isDecimal(s string) bool {
	digits := 0
	dots := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}
