package api

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func withLimits(l Limits) apiOption {
	return func(c *Config, _ *fakeSource) { c.Limits = l }
}

// req is one request from a given peer, with optional token and
// X-Forwarded-For.
type req struct {
	peer, method, target, token, xff, body string
}

func (a *testAPI) serve(q req) *httptest.ResponseRecorder {
	if q.method == "" {
		q.method = "GET"
	}
	r := httptest.NewRequest(q.method, q.target, strings.NewReader(q.body))
	r.RemoteAddr = q.peer
	if q.token != "" {
		r.Header.Set("Authorization", "Bearer "+q.token)
	}
	if q.xff != "" {
		r.Header.Set("X-Forwarded-For", q.xff)
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, r)
	return rec
}

func TestRateLimit(t *testing.T) {
	const rate = 5
	a := newTestAPI(t, 1, primaryHealth(), withLimits(Limits{RateLimit: rate}))
	// The test clock stands still, so no token comes back by itself.
	const from = "192.0.2.1:4711"
	ok, limited := 0, 0
	for range 4 * rate {
		rec := a.serve(req{peer: from, target: "/api/v1/cluster/status"})
		switch rec.Code {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			if ra := rec.Header().Get("Retry-After"); ra != "1" {
				t.Errorf("Retry-After = %q, want 1", ra)
			}
			env := envelopeOf(t, rec)
			if !strings.Contains(*env.Message, "too many requests") {
				t.Errorf("message %q", *env.Message)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	if ok != rate || limited != 3*rate {
		t.Errorf("%d allowed and %d limited, want %d and %d", ok, limited, rate, 3*rate)
	}
	// Another client has its own bucket.
	if rec := a.serve(req{peer: "192.0.2.2:4711", target: "/api/v1/cluster/status"}); rec.Code != 200 {
		t.Errorf("another client: %d", rec.Code)
	}
	// The load-balancer checks and /api/v1/health are exempt.
	for _, path := range append(checkPaths, "/api/v1/health") {
		for range 3 * rate {
			if rec := a.serve(req{peer: from, method: "OPTIONS", target: path}); rec.Code == http.StatusTooManyRequests {
				t.Fatalf("%s rate limited", path)
			}
		}
	}
	// Mutating requests count too (and are refused before auth).
	if rec := a.serve(req{peer: from, method: "POST", target: "/api/v1/cluster/switchover"}); rec.Code != http.StatusTooManyRequests {
		t.Errorf("POST over the limit: %d", rec.Code)
	}
	// Tokens come back at the configured rate.
	a.clock.Advance(time.Second / rate)
	if rec := a.serve(req{peer: from, target: "/api/v1/cluster/status"}); rec.Code != 200 {
		t.Errorf("after 1/rate s: %d", rec.Code)
	}
	if rec := a.serve(req{peer: from, target: "/api/v1/cluster/status"}); rec.Code != 429 {
		t.Errorf("second request after 1/rate s: %d", rec.Code)
	}
	a.clock.Advance(time.Hour)
	for i := range rate {
		if rec := a.serve(req{peer: from, target: "/api/v1/cluster/status"}); rec.Code != 200 {
			t.Fatalf("request %d after a long pause: %d (burst must be the rate, not more)", i, rec.Code)
		}
	}
	if rec := a.serve(req{peer: from, target: "/api/v1/cluster/status"}); rec.Code != 429 {
		t.Errorf("burst above the rate: %d", rec.Code)
	}

	// IPv6 clients are counted per /64.
	for i := range rate {
		peer := "[2001:db8:1:2::" + strconv.Itoa(i+1) + "]:1"
		if rec := a.serve(req{peer: peer, target: "/api/v1/cluster/status"}); rec.Code != 200 {
			t.Fatalf("v6 request %d: %d", i, rec.Code)
		}
	}
	if rec := a.serve(req{peer: "[2001:db8:1:2::99]:1", target: "/api/v1/cluster/status"}); rec.Code != 429 {
		t.Errorf("same /64: %d", rec.Code)
	}
	if rec := a.serve(req{peer: "[2001:db8:1:3::1]:1", target: "/api/v1/cluster/status"}); rec.Code != 200 {
		t.Errorf("other /64: %d", rec.Code)
	}
}

func TestRateLimiterEvictsIdleClients(t *testing.T) {
	clock := &fakeClock{t: testNow}
	l := newRateLimiter(10, clock.Now)
	for i := range 1000 {
		l.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if n := l.size(); n != 1000 {
		t.Fatalf("%d buckets, want 1000", n)
	}
	clock.Advance(sweepEvery)
	l.allow(netip.MustParseAddr("192.0.2.1"))
	if n := l.size(); n != 1 {
		t.Errorf("%d buckets after the idle ones refilled, want 1", n)
	}

	// A full table: new clients share the overflow bucket, the table does
	// not grow, and the table is swept again after a second.
	for i := range maxBuckets - 1 { // plus 192.0.2.1
		l.allow(netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := l.size(); n != maxBuckets {
		t.Fatalf("%d buckets, want %d", n, maxBuckets)
	}
	granted := 0
	for i := range 100 {
		if ok, _ := l.allow(netip.AddrFrom4([4]byte{12, 0, 0, byte(i)})); ok {
			granted++
		}
	}
	if n := l.size(); n != maxBuckets || granted != 10 {
		t.Errorf("full table: %d buckets, %d granted to newcomers, want %d and 10", n, granted, maxBuckets)
	}
	clock.Advance(time.Second)
	if ok, _ := l.allow(netip.MustParseAddr("12.0.0.200")); !ok {
		t.Error("newcomer refused after the sweep")
	}
	if n := l.size(); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
}

func TestBlockedIPs(t *testing.T) {
	op := &fakeOperator{}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op),
		withLimits(Limits{BlockedIPs: []string{"192.0.2.7", "198.51.100.0/24", "2001:db8::/32"}}))
	for _, c := range []struct {
		peer string
		want int
	}{
		{"192.0.2.7:1", 403},
		{"[::ffff:192.0.2.7]:1", 403},
		{"198.51.100.1:1", 403},
		{"198.51.100.254:1", 403},
		{"[2001:db8:ffff::1]:1", 403},
		{"192.0.2.8:1", 200},
		{"198.51.101.1:1", 200},
		{"[2001:db9::1]:1", 200},
	} {
		for _, target := range []string{"/api/v1/cluster/status", "/primary", "/api/v1/health", "/nope"} {
			rec := a.serve(req{peer: c.peer, target: target, token: testReadToken})
			want := c.want
			if want == 200 && target == "/nope" {
				want = 404
			}
			if rec.Code != want {
				t.Errorf("%s GET %s: %d, want %d", c.peer, target, rec.Code, want)
			}
			if rec.Code == 403 {
				envelopeOf(t, rec)
			}
		}
		rec := a.serve(req{peer: c.peer, method: "POST", target: "/api/v1/cluster/maintenance", token: testAdminToken, body: `{"enabled":true}`})
		if rec.Code != c.want {
			t.Errorf("%s POST maintenance: %d, want %d", c.peer, rec.Code, c.want)
		}
		if c.want == 403 && op.maintenance != nil {
			t.Fatalf("%s: a blocked client reached the operator", c.peer)
		}
		op.maintenance = nil
	}
}

func TestBadLimits(t *testing.T) {
	for _, l := range []Limits{{RateLimit: -1}, {BlockedIPs: []string{"nope"}}, {TrustedProxies: []string{"10.0.0.0/33"}}} {
		if _, err := NewHandler(Config{Source: &fakeSource{}, Limits: l}); err == nil {
			t.Errorf("%+v accepted", l)
		}
	}
}

func TestClientAddr(t *testing.T) {
	s, _, err := newServer(Config{Source: &fakeSource{}, Limits: Limits{TrustedProxies: []string{"10.0.0.1", "10.1.0.0/16", "fd00::1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer string
		xff  []string
		want string
	}{
		// An untrusted peer: the header is ignored, whatever it says.
		{"192.0.2.1:1", []string{"203.0.113.9"}, "192.0.2.1"},
		{"192.0.2.1:1", nil, "192.0.2.1"},
		// A trusted proxy: the rightmost untrusted address.
		{"10.0.0.1:1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"10.0.0.1:1", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"10.0.0.1:1", []string{"198.51.100.1, 203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"10.0.0.1:1", []string{"198.51.100.1", "203.0.113.9,10.1.2.3"}, "203.0.113.9"},
		{"10.0.0.1:1", []string{"198.51.100.1", "10.1.2.3"}, "198.51.100.1"},
		{"10.0.0.1:1", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"10.0.0.1:1", []string{"[2001:db8::9]:4711"}, "2001:db8::9"},
		{"10.0.0.1:1", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"[fd00::1]:1", []string{"2001:db8::9"}, "2001:db8::9"},
		{"[::ffff:10.0.0.1]:1", []string{"203.0.113.9"}, "203.0.113.9"},
		// Every hop trusted: the leftmost.
		{"10.0.0.1:1", []string{"10.1.0.5, 10.1.0.6"}, "10.1.0.5"},
		// No header: the proxy itself.
		{"10.0.0.1:1", nil, "10.0.0.1"},
		// Garbage ends the walk at the last trusted hop.
		{"10.0.0.1:1", []string{"203.0.113.9, evil"}, "10.0.0.1"},
		{"10.0.0.1:1", []string{"203.0.113.9, unknown, 10.1.0.9"}, "10.1.0.9"},
		{"10.0.0.1:1", []string{""}, "10.0.0.1"},
		{"10.0.0.1:1", []string{"203.0.113.9,"}, "10.0.0.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientAddr(r); got.String() != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}

func TestForwardedFor(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth(), withLimits(Limits{
		TrustedProxies: []string{"10.0.0.1"},
		BlockedIPs:     []string{"203.0.113.9"},
		RateLimit:      2,
	}))
	for _, c := range []struct {
		name, peer, xff string
		want            int
	}{
		{"trusted proxy, blocked client", "10.0.0.1:1", "203.0.113.9", 403},
		{"trusted proxy, spoofed blocked entry on the left", "10.0.0.1:1", "203.0.113.9, 192.0.2.5", 200},
		{"untrusted peer claims a blocked client", "192.0.2.6:1", "203.0.113.9", 200},
		{"untrusted peer claims to be the proxy", "203.0.113.9:1", "192.0.2.8", 403},
	} {
		if rec := a.serve(req{peer: c.peer, xff: c.xff, target: "/api/v1/cluster/status"}); rec.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, rec.Code, c.want)
		}
	}
	// Behind the proxy, each client has its own rate limit; the proxy's
	// own address is not what is counted.
	for _, client := range []string{"192.0.2.10", "192.0.2.11", "192.0.2.12"} {
		for i := range 2 {
			if rec := a.serve(req{peer: "10.0.0.1:1", xff: client, target: "/api/v1/cluster/status"}); rec.Code != 200 {
				t.Fatalf("%s request %d through the proxy: %d", client, i, rec.Code)
			}
		}
		if rec := a.serve(req{peer: "10.0.0.1:1", xff: client, target: "/api/v1/cluster/status"}); rec.Code != 429 {
			t.Errorf("%s third request: %d", client, rec.Code)
		}
	}
	// An untrusted peer cannot dodge its limit by inventing clients.
	for i := range 4 {
		rec := a.serve(req{peer: "192.0.2.20:1", xff: "198.51.100." + strconv.Itoa(i), target: "/api/v1/cluster/status"})
		if want := map[bool]int{true: 200, false: 429}[i < 2]; rec.Code != want {
			t.Errorf("spoofing request %d: %d, want %d", i, rec.Code, want)
		}
	}
}

// TestBodyCapOnEveryMutatingRequest: the middleware caps the body of any
// mutating request, so a handler that ignores decodeBody (or a future one)
// still cannot be fed more than maxBody.
func TestBodyCapOnEveryMutatingRequest(t *testing.T) {
	s, _, err := newServer(Config{Source: &fakeSource{}})
	if err != nil {
		t.Fatal(err)
	}
	var readErr error
	var n int64
	h := s.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, readErr = io.Copy(io.Discard, r.Body)
	}))
	big := strings.Repeat("x", maxBody+100)
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "X"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/anything", strings.NewReader(big)))
		var mbe *http.MaxBytesError
		if !errors.As(readErr, &mbe) || n > maxBody {
			t.Errorf("%s: read %d bytes, err %v", m, n, readErr)
		}
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/anything", strings.NewReader(big)))
	if readErr != nil {
		t.Errorf("GET body capped: %v", readErr)
	}

	op := &fakeOperator{}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op))
	for _, target := range []string{"/api/v1/cluster/switchover", "/api/v1/cluster/failover", "/api/v1/cluster/maintenance"} {
		body := `{"candidate": 2` + strings.Repeat(" ", maxBody) + `}`
		if rec := a.send("POST", target, body); rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with %d bytes: %d", target, len(body), rec.Code)
		}
	}
}

// TestMaxConnections serves the API on a real listener capped at two
// connections: a third client waits until one of the first two leaves.
func TestMaxConnections(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), a.h)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(LimitListener(ln, 2)) }()
	defer func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()

	get := func(c net.Conn, wait time.Duration) (string, error) {
		if _, err := io.WriteString(c, "GET /api/v1/health HTTP/1.1\r\nHost: ramd\r\n\r\n"); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 12)
		_, err := io.ReadFull(c, buf)
		return string(buf), err
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1, c2, c3 := dial(), dial(), dial()
	for i, c := range []net.Conn{c1, c2} {
		if status, err := get(c, 5*time.Second); err != nil || status != "HTTP/1.1 200" {
			t.Fatalf("connection %d: %q %v", i+1, status, err)
		}
	}
	// Both keep-alive connections hold their slots: the third is
	// connected (the kernel queued it) but not served.
	if status, err := get(c3, 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("third connection served while two are open: %q %v", status, err)
	}
	c1.Close()
	_ = c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c3, buf); err != nil || string(buf) != "HTTP/1.1 200" {
		t.Fatalf("third connection after the first closed: %q %v", buf, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestLimitListenerClose: closing the listener ends an Accept waiting for
// a free slot.
func TestLimitListenerClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitListener(ln, 1)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	// Closing a connection twice frees its slot once.
	held.Close()
	held.Close()
	if n := len(l.(*limitListener).sem); n != 0 {
		t.Errorf("%d slots held", n)
	}
}

// TestSlowClientCutOff: a client that sends its headers a byte at a time
// is disconnected once ReadHeaderTimeout passes, whatever it still sends.
func TestSlowClientCutOff(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), a.h)
	if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > 10*time.Second {
		t.Fatalf("ReadHeaderTimeout = %v", srv.ReadHeaderTimeout)
	}
	srv.ReadHeaderTimeout = 300 * time.Millisecond // the test's patience, not production's
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	const request = "GET /api/v1/health HTTP/1.1\r\nHost: ramd\r\nX-Padding: slow-loris\r\n\r\n"
	writeErr := make(chan error, 1)
	go func() {
		for i := range len(request) {
			if _, err := c.Write([]byte{request[i]}); err != nil {
				writeErr <- err
				return
			}
			time.Sleep(50 * time.Millisecond) // the whole request would take 3.5 s
		}
		writeErr <- nil
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, err := io.ReadAll(c)
	took := time.Since(start)
	if strings.Contains(string(data), "200 OK") {
		t.Fatalf("the slow client was served: %q", data)
	}
	if isTimeout(err) || took > 2*time.Second {
		t.Fatalf("not cut off after %v: %q %v", took, data, err)
	}
	c.Close()
	<-writeErr
}
