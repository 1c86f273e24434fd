package pg

import "testing"

func TestHealthRole(t *testing.T) {
	tests := []struct {
		h    Health
		want string
	}{
		{Health{}, "unknown"},
		{Health{Running: true}, "unknown"},
		{Health{Running: true, Accepting: true}, "primary"},
		{Health{Running: true, Accepting: true, InRecovery: true}, "replica"},
		{Health{Running: true, InRecovery: true}, "replica"},
		{Health{Accepting: true, InRecovery: true}, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.h.Role(); got != tt.want {
			t.Errorf("%+v: Role() = %q, want %q", tt.h, got, tt.want)
		}
	}
}
