package api

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits protects the API from clients that should not reach it or that
// ask too much. The zero value limits nothing. Every limit applies to the
// client address: the direct peer, or with TrustedProxies the address a
// trusted proxy reports in X-Forwarded-For.
type Limits struct {
	// RateLimit is how many requests per second one client may make
	// (a token bucket whose burst equals the rate); further requests get
	// 429 with Retry-After. The load-balancer checks and /api/v1/health are
	// exempt: a load balancer polls them often and must never be refused.
	// IPv6 clients are counted per /64, the block one host usually owns.
	// 0 disables the limit.
	RateLimit int
	// BlockedIPs are addresses or CIDRs answered 403 before any other
	// work, the checks included.
	BlockedIPs []string
	// TrustedProxies are addresses or CIDRs of reverse proxies. Only when
	// the direct peer is one of them is X-Forwarded-For read: the client
	// is its rightmost address that is not itself a trusted proxy (the
	// entries to its left were written by the client and prove nothing).
	TrustedProxies []string
}

// parsePrefixes parses addresses ("10.0.0.1", "::1") and CIDRs
// ("10.0.0.0/8") into prefixes; a single address is a full-length prefix.
func parsePrefixes(field string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("api: Limits.%s: %q is neither an IP address nor a CIDR", field, s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the address of the direct peer (invalid when RemoteAddr is
// not an address, as in hand-built requests).
func peerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// clientAddr is the address limits, blocks and the audit log apply to.
// X-Forwarded-For is read only when the direct peer is a trusted proxy,
// and from the right: each trusted hop vouches for the address to its
// left, so the first untrusted address is the client. An entry that is not
// an address ends the walk at the last trusted hop; when every entry is
// trusted, the leftmost is the client.
func (s *server) clientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if len(s.trusted) == 0 || !containsAddr(s.trusted, peer) {
		return peer
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		for h != "" {
			var hop string
			if j := strings.LastIndexByte(h, ','); j >= 0 {
				hop, h = h[j+1:], h[:j]
			} else {
				hop, h = h, ""
			}
			a, ok := parseHop(hop)
			if !ok {
				return client
			}
			if !containsAddr(s.trusted, a) {
				return a
			}
			client = a
		}
	}
	return client
}

// parseHop parses one X-Forwarded-For entry: an address, possibly with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// admit applies the limits before any routing: a blocked client gets 403,
// one over its rate 429. It also caps the body of every mutating request,
// whatever its handler does with it.
func (s *server) admit(rw *recorder, r *http.Request) bool {
	if mutating(r.Method) && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(rw, r.Body, maxBody)
	}
	if !s.guarded {
		return true
	}
	rw.client, rw.clientSet = s.clientAddr(r), true
	if containsAddr(s.blocked, rw.client) {
		s.writeError(rw, r, http.StatusForbidden, "access from this address is not allowed")
		return false
	}
	if s.limiter != nil && !s.exempt[r.URL.Path] {
		if ok, wait := s.limiter.allow(rw.client); !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			rw.Header().Set("Retry-After", strconv.Itoa(secs))
			s.writeError(rw, r, http.StatusTooManyRequests, "too many requests: at most %d per second per client; retry in %d s", s.limiter.rate, secs)
			return false
		}
	}
	return true
}

// mutating reports whether a method may change something: anything but
// GET, HEAD and OPTIONS.
func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// Bounds of the rate limiter's memory: at most maxBuckets clients are
// tracked at once. A bucket that has been idle long enough to be full
// again is no different from a new one, so a sweep (at most every
// sweepEvery, or every second while the table is full) drops it. While the
// table stays full, new clients share one overflow bucket.
const (
	maxBuckets = 1 << 16
	sweepEvery = 10 * time.Second
)

// rateLimiter is a token bucket per client: rate tokens a second, at most
// rate in the bucket (the burst).
type rateLimiter struct {
	rate int
	now  func() time.Time

	mu        sync.Mutex
	buckets   map[netip.Addr]bucket
	overflow  bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: rate, now: now, buckets: make(map[netip.Addr]bucket), lastSweep: now()}
}

// limiterKey groups IPv6 addresses by /64.
func limiterKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// allow takes a token for a. When none is left it returns false and how
// long until the next one.
func (l *rateLimiter) allow(a netip.Addr) (bool, time.Duration) {
	now := l.now()
	key := limiterKey(a)
	rate, burst := float64(l.rate), float64(l.rate)

	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		since := now.Sub(l.lastSweep)
		if since >= sweepEvery || (len(l.buckets) >= maxBuckets && since >= time.Second) {
			l.sweep(now)
		}
		b = bucket{tokens: burst, last: now}
	}
	full := !ok && len(l.buckets) >= maxBuckets
	if full {
		b = l.overflow
		if b.last.IsZero() {
			b = bucket{tokens: burst, last: now}
		}
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(burst, b.tokens+elapsed*rate)
	}
	b.last = now
	granted := b.tokens >= 1
	if granted {
		b.tokens--
	}
	if full {
		l.overflow = b
	} else {
		l.buckets[key] = b
	}
	if granted {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// sweep drops the buckets that have refilled completely.
func (l *rateLimiter) sweep(now time.Time) {
	const refill = time.Second // burst / rate: an empty bucket's time to fill
	for k, b := range l.buckets {
		if now.Sub(b.last) >= refill {
			delete(l.buckets, k)
		}
	}
	l.lastSweep = now
}

func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// LimitListener returns a listener that holds at most n connections open
// at once (n > 0). When n are open, Accept waits for one to close, so
// further clients wait in the kernel's accept queue (and are refused by
// the kernel once that is full) rather than being accepted and dropped.
// Connections are freed when closed: the server's timeouts (see NewServer)
// bound how long an idle or slow client holds one. Closing the listener
// ends a waiting Accept.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
