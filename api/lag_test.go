package api

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseLag(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1048576, true},
		{"16kB", 16 << 10, true},
		{"1024kB", 1 << 20, true},
		{"10MB", 10 << 20, true},
		{"1GB", 1 << 30, true},
		{"2TB", 2 << 40, true},
		{"16kb", 16 << 10, true},
		{"16KB", 16 << 10, true},
		{"16k", 16 << 10, true},
		{"16K", 16 << 10, true},
		{"10m", 10 << 20, true},
		{"1g", 1 << 30, true},
		{"1t", 1 << 40, true},
		{"16KiB", 16 << 10, true},
		{"100B", 100, true},
		{"100b", 100, true},
		{" 64 MB ", 64 << 20, true},
		{"007", 7, true},
		{"18446744073709551615", 1<<64 - 1, true},
		{"16777215TB", 16777215 << 40, true},

		{"", 0, false},
		{" ", 0, false},
		{"MB", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5GB", 0, false},
		{"1e6", 0, false},
		{"0x10", 0, false},
		{"10 M B", 0, false},
		{"10PB", 0, false},
		{"10MBB", 0, false},
		{"10mbit", 0, false},
		{"abc", 0, false},
		{"18446744073709551616", 0, false},
		{"99999999999999999999999", 0, false},
		{"16777216TB", 0, false},
		{"10\x00MB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseLag(tt.in)
		if tt.ok != (err == nil) {
			t.Errorf("ParseLag(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "api: ") || !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
				t.Errorf("ParseLag(%q) error %q should start with api: and quote the input", tt.in, err)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("ParseLag(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func FuzzParseLag(f *testing.F) {
	for _, s := range []string{
		"0", "1048576", "16kB", "10MB", "1GB", "1TB", "16k", "16KiB", "100B",
		" 64 MB ", "", "-1", "1.5GB", "10PB", "18446744073709551615",
		"18446744073709551616", "16777216TB", "abc", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseLag(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseLag(%q) = %d with error %v", s, n, err)
			}
			return
		}
		// A plain number must agree with strconv.
		if trimmed := strings.TrimSpace(s); trimmed != "" && strings.Trim(trimmed, "0123456789") == "" {
			want, perr := strconv.ParseUint(trimmed, 10, 64)
			if perr != nil || want != n {
				t.Fatalf("ParseLag(%q) = %d, strconv says %d, %v", s, n, want, perr)
			}
		}
		// The canonical byte form round-trips.
		back, err := ParseLag(strconv.FormatUint(n, 10))
		if err != nil || back != n {
			t.Fatalf("round trip of %d: %d, %v", n, back, err)
		}
		// Any accepted unit scales the plain number, so the kB form of a
		// multiple of 1024 parses to the same value.
		if n%1024 == 0 {
			if k, err := ParseLag(strconv.FormatUint(n/1024, 10) + "kB"); err != nil || k != n {
				t.Fatalf("kB form of %d: %d, %v", n, k, err)
			}
		}
	})
}
