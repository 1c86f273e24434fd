package mesh

import (
	"errors"
	"net"
	"slices"
	"testing"
)

func TestSelectSeeds(t *testing.T) {
	self := newSelfAddrs(net.ParseIP("127.0.0.1"), 7000, net.ParseIP("127.0.0.1"), 7000)
	resolve := func(host string) ([]net.IP, error) {
		switch host {
		case "alive.example":
			return []net.IP{net.ParseIP("10.0.0.2")}, nil
		case "me.example":
			return []net.IP{net.ParseIP("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	live := map[string]string{"127.0.0.1:7000": "self", "10.0.0.2:7000": "b", "127.0.0.1:7001": "c"}
	seeds := []string{
		"127.0.0.1:7000",     // us
		"me.example:7000",    // us by name
		"127.0.0.1:7001",     // live member
		"alive.example:7000", // live member by name
		"127.0.0.1:7002",     // not a member
		"10.0.0.2:7001",      // same host as a member, other port
		"unknown.example:7000",
	}
	got := selectSeeds(seeds, live, self.is, resolve)
	want := []string{"127.0.0.1:7002", "10.0.0.2:7001", "unknown.example:7000"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSelfAddrs(t *testing.T) {
	specific := newSelfAddrs(net.ParseIP("127.0.0.1"), 7000, net.ParseIP("127.0.0.1"), 7000)
	if !specific.is(net.ParseIP("127.0.0.1"), 7000) {
		t.Error("own address")
	}
	// On a specific loopback bind another loopback IP is another node.
	if specific.is(net.ParseIP("127.0.0.2"), 7000) || specific.is(net.ParseIP("127.0.0.1"), 7001) {
		t.Error("other node taken for us")
	}
	any := newSelfAddrs(net.ParseIP("0.0.0.0"), 7000, net.ParseIP("10.1.2.3"), 7946)
	for _, tc := range []struct {
		ip   string
		port int
		want bool
	}{
		{"127.0.0.1", 7000, true},
		{"10.1.2.3", 7946, true},
		{"10.1.2.3", 7000, true},
		{"10.9.9.9", 7000, false},
		{"127.0.0.1", 7001, false},
	} {
		if got := any.is(net.ParseIP(tc.ip), tc.port); got != tc.want {
			t.Errorf("%s:%d = %v, want %v", tc.ip, tc.port, got, tc.want)
		}
	}
}

type multiErr []error

func (m multiErr) Error() string          { return "many" }
func (m multiErr) WrappedErrors() []error { return m }

func TestErrText(t *testing.T) {
	if got := errText(multiErr{errors.New("a"), errors.New("b")}); got != "a; b" {
		t.Fatal(got)
	}
	if got := errText(errors.New("plain")); got != "plain" {
		t.Fatal(got)
	}
	if got := errText(nil); got == "" {
		t.Fatal("empty text for nil")
	}
}
