package mesh

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func twoNodes(t *testing.T, l Link) (*Network, *Transport, *Transport) {
	t.Helper()
	n := NewNetwork(l, 1, 2)
	a, err := n.NewTransport("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.NewTransport("b")
	if err != nil {
		t.Fatal(err)
	}
	return n, a, b
}

func recvPacket(t *testing.T, tr *Transport, within time.Duration) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(within):
		return nil
	}
}

func TestPacketDeliveredWithSenderAddress(t *testing.T) {
	_, a, b := twoNodes(t, Link{Delay: 5 * time.Millisecond})
	msg := []byte("hello")
	if _, err := a.WriteTo(msg, b.Addr()); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'X' // the network must have copied the buffer
	p := recvPacket(t, b, time.Second)
	if p == nil {
		t.Fatal("packet not delivered")
	}
	if string(p.Buf) != "hello" || p.From.String() != a.Addr() {
		t.Fatalf("got %q from %v, want hello from %s", p.Buf, p.From, a.Addr())
	}
}

func TestDroppedPacketLooksLikeSuccess(t *testing.T) {
	n, a, b := twoNodes(t, Link{Loss: 0.999999})
	for range 100 {
		if _, err := a.WriteTo([]byte("x"), b.Addr()); err != nil {
			t.Fatalf("WriteTo of a lost packet returned %v; UDP reports success", err)
		}
	}
	if p := recvPacket(t, b, 50*time.Millisecond); p != nil {
		t.Fatal("a packet got through 99.9999% loss")
	}
	if s := n.Stats(); s.LostRandom != 100 {
		t.Fatalf("LostRandom = %d, want 100", s.LostRandom)
	}
	// Across a partition and to a crashed node: also success, also lost.
	if err := n.Partition([]string{"a"}, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	n.SetDefaultLink(Link{})
	if _, err := a.WriteTo([]byte("x"), b.Addr()); err != nil {
		t.Fatal(err)
	}
	n.Heal()
	if err := n.Crash("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteTo([]byte("x"), b.Addr()); err != nil {
		t.Fatal(err)
	}
	if p := recvPacket(t, b, 50*time.Millisecond); p != nil {
		t.Fatal("packet crossed a partition or reached a crashed node")
	}
	if s := n.Stats(); s.LostPartition != 1 || s.LostDown != 1 {
		t.Fatalf("stats %+v, want one lost to the partition and one to the crash", s)
	}
}

// accept returns the next stream b accepts.
func accept(t *testing.T, b *Transport) io.ReadWriteCloser {
	t.Helper()
	select {
	case c := <-b.StreamCh():
		return c
	case <-time.After(time.Second):
		t.Fatal("no stream accepted")
		return nil
	}
}

func TestStreamAndHeal(t *testing.T) {
	n, a, b := twoNodes(t, Link{})
	c, err := a.DialTimeout(b.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := accept(t, b)
	go func() { _, _ = c.Write([]byte("ping")) }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if c.RemoteAddr().String() != b.Addr() || c.LocalAddr().String() != a.Addr() {
		t.Fatalf("addresses %v -> %v", c.LocalAddr(), c.RemoteAddr())
	}
	c.Close()
	s.Close()

	// A partition makes dials hang until their timeout; Heal restores.
	if err := n.Partition([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = a.DialTimeout(b.Addr(), 150*time.Millisecond)
	if !IsDialTimeout(err) {
		t.Fatalf("dial across a partition: %v, want a timeout", err)
	}
	if took := time.Since(start); took < 140*time.Millisecond {
		t.Fatalf("dial across a partition failed after %v, before its timeout", took)
	}
	n.Heal()
	c, err = a.DialTimeout(b.Addr(), time.Second)
	if err != nil {
		t.Fatalf("dial after heal: %v", err)
	}
	accept(t, b).Close()
	c.Close()
	if _, err := a.WriteTo([]byte("x"), b.Addr()); err != nil {
		t.Fatal(err)
	}
	if recvPacket(t, b, time.Second) == nil {
		t.Fatal("no packet after heal")
	}
}

func TestPartitionCutsOpenStream(t *testing.T) {
	n, a, b := twoNodes(t, Link{})
	c, err := a.DialTimeout(b.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := accept(t, b)
	readErr := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		readErr <- err
	}()
	if err := n.Partition([]string{"a"}, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("read on a cut stream succeeded")
		}
	case <-time.After(time.Second):
		t.Fatal("a partition did not cut the open stream")
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write on a cut stream succeeded")
	}
	if got := n.Stats().StreamsCut; got != 1 {
		t.Fatalf("StreamsCut = %d, want 1", got)
	}
}

func TestDialToCrashedNodeIsRefused(t *testing.T) {
	n, a, b := twoNodes(t, Link{})
	c, err := a.DialTimeout(b.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := accept(t, b)
	defer s.Close()
	if err := n.Crash("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("a crash did not cut the open stream")
	}
	start := time.Now()
	_, err = a.DialTimeout(b.Addr(), 5*time.Second)
	if !IsRefused(err) || time.Since(start) > time.Second {
		t.Fatalf("dial to a crashed node: %v after %v, want refused at once", err, time.Since(start))
	}
	_, err = a.DialTimeout("10.255.255.254:7946", time.Second)
	if !IsRefused(err) {
		t.Fatalf("dial to an unknown address: %v, want refused", err)
	}
}

func TestPauseHoldsTrafficBothWays(t *testing.T) {
	n, a, b := twoNodes(t, Link{})
	if err := n.Pause("b", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !b.Paused() {
		t.Fatal("b not paused")
	}
	if _, err := a.WriteTo([]byte("in"), b.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteTo([]byte("out"), a.Addr()); err != nil {
		t.Fatal(err)
	}
	if recvPacket(t, b, 50*time.Millisecond) != nil || recvPacket(t, a, 10*time.Millisecond) != nil {
		t.Fatal("traffic moved during the pause")
	}
	if p := recvPacket(t, b, time.Second); p == nil || string(p.Buf) != "in" {
		t.Fatalf("held inbound packet after the pause: %v", p)
	}
	if p := recvPacket(t, a, time.Second); p == nil || string(p.Buf) != "out" {
		t.Fatalf("held outbound packet after the pause: %v", p)
	}
	// A dial to a node that stays paused past the timeout fails.
	_ = n.Pause("b", time.Second)
	_, err := a.DialTimeout(b.Addr(), 100*time.Millisecond)
	if !IsDialTimeout(err) {
		t.Fatalf("dial to a paused node: %v, want a timeout", err)
	}
}

func TestUnknownNodeErrors(t *testing.T) {
	n, _, _ := twoNodes(t, Link{})
	for name, err := range map[string]error{
		"crash":     n.Crash("zz"),
		"pause":     n.Pause("zz", time.Second),
		"partition": n.Partition([]string{"zz"}),
		"link":      n.SetLink("a", "zz", Link{}),
	} {
		if err == nil {
			t.Errorf("%s of an unknown node: no error", name)
		}
	}
	if _, err := n.NewTransport("a"); err == nil {
		t.Error("duplicate node name accepted")
	}
}

func TestSpreadPercentiles(t *testing.T) {
	per := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	s := spreadOf("x", per, 10)
	if !s.Complete || s.Median != 5 || s.P90 != 9 || s.Max != 10 || s.All != 10 {
		t.Fatalf("%+v", s)
	}
	if s := spreadOf("x", []time.Duration{1}, 3); s.Complete || s.All != 0 {
		t.Fatalf("incomplete spread reported complete: %+v", s)
	}
}
