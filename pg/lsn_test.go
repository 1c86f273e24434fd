package pg

import "testing"

func TestParseLSNRoundTrip(t *testing.T) {
	for _, s := range []string{"0/0", "0/1", "16/B374D848", "1/0", "FFFFFFFF/FFFFFFFF"} {
		l, err := ParseLSN(s)
		if err != nil {
			t.Fatalf("ParseLSN(%q): %v", s, err)
		}
		if got := l.String(); got != s {
			t.Errorf("ParseLSN(%q).String() = %q", s, got)
		}
	}
	if l, _ := ParseLSN("16/B374D848"); l != 0x16_B374D848 {
		t.Errorf("ParseLSN value = %#x", uint64(l))
	}
	// lower case, as some tools print it
	if l, err := ParseLSN("a/b"); err != nil || l != 0xA_0000000B {
		t.Errorf("ParseLSN(a/b) = %v, %v", l, err)
	}
}

func TestParseLSNInvalid(t *testing.T) {
	for _, s := range []string{"", "1", "/1", "1/", "G/0", "0/G", "123456789/0", "0/123456789", "1/ 2", "-1/0", "1/2/3"} {
		if _, err := ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q) succeeded", s)
		}
	}
}

func TestLagBytes(t *testing.T) {
	if got := lagBytes(100, 40); got != 60 {
		t.Errorf("lagBytes(100, 40) = %d", got)
	}
	if got := lagBytes(40, 100); got != 0 {
		t.Errorf("a standby sampled ahead must not underflow: %d", got)
	}
	if got := lagBytes(100, 0); got != 0 {
		t.Errorf("unknown position must be 0: %d", got)
	}
}
