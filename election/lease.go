package election

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// LeaseConfig tunes the primary lease. All durations are logical time
// (the daemon feeds its monotonic clock); MaxDrift is a rate bound.
type LeaseConfig struct {
	// TTL is how long one round of grants keeps the primary's lease,
	// before the drift margin is taken off. Default 4s.
	TTL time.Duration
	// RenewInterval is how often the primary asks for grants. It must be
	// at most TTL/3 so that a lost round or two does not lose the lease.
	// Default TTL/4.
	RenewInterval time.Duration
	// MaxDrift bounds how far any daemon's clock rate may differ from real
	// time, as a fraction (0.01: a clock runs between 0.99 and 1.01
	// seconds per real second). Default 0.01, at most 0.1.
	MaxDrift float64
	// Safety is a fixed extra margin (scheduling delay between reading the
	// clock and acting on it). Default 50ms.
	Safety time.Duration
}

// DefaultLeaseConfig returns the documented defaults.
func DefaultLeaseConfig() LeaseConfig {
	return LeaseConfig{TTL: 4 * time.Second, RenewInterval: time.Second, MaxDrift: 0.01, Safety: 50 * time.Millisecond}
}

// ErrLeaseConfig wraps every LeaseConfig.Validate failure.
var ErrLeaseConfig = errors.New("election: invalid lease config")

// Validate rejects configurations in which the lease could never be held
// or the arithmetic below would not be safe.
func (c LeaseConfig) Validate() error {
	switch {
	case c.TTL <= 0:
		return fmt.Errorf("%w: ttl %v must be positive", ErrLeaseConfig, c.TTL)
	case c.RenewInterval <= 0:
		return fmt.Errorf("%w: renew interval %v must be positive", ErrLeaseConfig, c.RenewInterval)
	case c.RenewInterval > c.TTL/3:
		return fmt.Errorf("%w: renew interval %v must be at most ttl/3 (%v)", ErrLeaseConfig, c.RenewInterval, c.TTL/3)
	case c.MaxDrift < 0 || c.MaxDrift > 0.1 || c.MaxDrift != c.MaxDrift:
		return fmt.Errorf("%w: max drift %v must be within [0, 0.1]", ErrLeaseConfig, c.MaxDrift)
	case c.Safety <= 0:
		return fmt.Errorf("%w: safety %v must be positive", ErrLeaseConfig, c.Safety)
	case c.TTL < 4*c.DriftMargin():
		// The holder keeps TTL-margin; below 4x the usable lease would be
		// shorter than the renew interval allows for.
		return fmt.Errorf("%w: ttl %v must be at least 4x the drift margin %v", ErrLeaseConfig, c.TTL, c.DriftMargin())
	}
	return nil
}

// DriftMargin is what the holder subtracts from, and every grantor adds
// to, the TTL: 2·TTL·MaxDrift + Safety.
func (c LeaseConfig) DriftMargin() time.Duration {
	return time.Duration(float64(c.TTL)*c.MaxDrift*2) + c.Safety
}

// HolderExpiry is when, on the holder's clock, a lease whose request was
// sent at sentNow ends (if a quorum granted that request).
//
// Why the holder always gives up first. Let ρ = MaxDrift, m = DriftMargin
// and let every clock advance between (1-ρ) and (1+ρ) clock-seconds per
// real second. The holder reads sentNow at real time t_s and a grantor
// reads recvNow at real time t_r ≥ t_s (a message arrives after it was
// sent). The holder's lease ends after TTL-m of holder time, i.e. at real
// time at most t_s + (TTL-m)/(1-ρ). The grant ends after TTL+m of grantor
// time, i.e. at real time at least t_r + (TTL+m)/(1+ρ) ≥ t_s +
// (TTL+m)/(1+ρ). The first is strictly earlier iff
// (TTL-m)(1+ρ) < (TTL+m)(1-ρ) ⇔ 2·TTL·ρ < 2m ⇔ m > TTL·ρ, which holds since
// m = 2·TTL·ρ + Safety and Validate requires Safety > 0 (the factor 2
// also covers reading the two clocks at the two ends of a message).
// TestLeaseNeverOutlivesGrant checks it for random rates and delays. It
// holds for every request separately, so also for the newest
// quorum-granted one that defines the lease.
func HolderExpiry(c LeaseConfig, sentNow time.Duration) time.Duration {
	return sentNow + c.TTL - c.DriftMargin()
}

// GrantExpiry is until when, on the grantor's clock, a grant given at
// recvNow binds the grantor (it reports it as outstanding on Revoke).
func GrantExpiry(c LeaseConfig, recvNow time.Duration) time.Duration {
	return recvNow + c.TTL + c.DriftMargin()
}

// WaitFor converts a remaining time measured on another node's clock into
// a wait on this node's clock that is certainly at least as long in real
// time: remaining R of the other clock lasts at most R/(1-ρ) real time, and
// a wait W of ours lasts at least W/(1+ρ), so W ≥ R(1+ρ)/(1-ρ) suffices;
// for ρ ≤ 1/3, (1+ρ)/(1-ρ) ≤ 1+3ρ. Safety is added on top.
func WaitFor(c LeaseConfig, remaining time.Duration) time.Duration {
	if remaining <= 0 {
		return 0
	}
	return remaining + time.Duration(float64(remaining)*3*c.MaxDrift) + c.Safety
}

// Grantor is a voter's side of the lease. It grants only to the applied
// primary for the applied token, never for a revoked (or released) token,
// and remembers until when its grants bind it.
type Grantor struct {
	cfg LeaseConfig
	// revoked is the highest token this voter revoked. Tokens only grow,
	// so one number stands for "every token up to here". It must survive
	// restarts (Node asks the daemon to persist it).
	revoked uint64
	// until holds, per token, when the latest grant for it expires.
	until map[uint64]time.Duration
	// amnesty covers grants this voter may have given before a restart
	// and no longer remembers: everything is outstanding until then.
	amnesty time.Duration
}

// NewGrantor starts a grantor at now. revoked is the persisted highest
// revoked token (0 on first start). Having forgotten its grants, a
// restarted grantor reports a grant outstanding for TTL+margin; a node
// starting for the first time has granted nothing.
func NewGrantor(c LeaseConfig, now time.Duration, revoked uint64, restarted bool) *Grantor {
	g := &Grantor{cfg: c, revoked: revoked, until: map[uint64]time.Duration{}}
	if restarted {
		g.amnesty = GrantExpiry(c, now)
	}
	return g
}

// Revoked returns the highest revoked token.
func (g *Grantor) Revoked() uint64 { return g.revoked }

// Grant decides a LeaseRequest from node from, given the applied state.
func (g *Grantor) Grant(st ClusterState, from, token uint64, now time.Duration) (bool, string) {
	switch {
	case !st.Bootstrapped:
		return false, "not bootstrapped"
	case token != st.Token:
		return false, fmt.Sprintf("token %d is not the applied token %d", token, st.Token)
	case from != st.Primary:
		return false, fmt.Sprintf("node %d is not the primary of token %d (node %d is)", from, token, st.Primary)
	case token <= g.revoked:
		return false, fmt.Sprintf("token %d is revoked", token)
	}
	if e := GrantExpiry(g.cfg, now); e > g.until[token] {
		g.until[token] = e
	}
	return true, ""
}

// Revoke stops granting token (and every lower one) forever and returns
// how long the longest outstanding grant for it still binds, on this
// clock. changed reports whether the revoked token moved (persist it).
func (g *Grantor) Revoke(token uint64, now time.Duration) (remaining time.Duration, changed bool) {
	if token > g.revoked {
		g.revoked, changed = token, true
	}
	return g.Remaining(token, now), changed
}

// Release is the holder giving up token: it has stopped acknowledging
// writes, so its grants no longer need to be waited for. The token is
// revoked too, so nothing renews it afterwards.
func (g *Grantor) Release(token uint64) (changed bool) {
	delete(g.until, token)
	if token > g.revoked {
		g.revoked, changed = token, true
	}
	return changed
}

// Remaining is how long grants for token still bind this voter.
func (g *Grantor) Remaining(token uint64, now time.Duration) time.Duration {
	for t, u := range g.until {
		if u <= now {
			delete(g.until, t) // order-independent: only expired ones go
		}
	}
	end := max(g.until[token], g.amnesty)
	if end <= now {
		return 0
	}
	return end - now
}

// Holder is the primary's side: it numbers its requests, remembers when
// each was sent, and counts grants from voters.
type Holder struct {
	cfg     LeaseConfig
	self    uint64
	token   uint64
	voters  []uint64
	seq     uint64
	pending map[uint64]*leaseRound
	expiry  time.Duration
	held    bool
	// refused: voters that refused token as revoked (forever).
	refused []uint64
}

type leaseRound struct {
	sent   time.Duration
	grants []uint64
}

// NewHolder returns an idle holder for node self.
func NewHolder(c LeaseConfig, self uint64) *Holder {
	return &Holder{cfg: c, self: self, pending: map[uint64]*leaseRound{}}
}

// Start begins holding token with the given voters. It resets the lease:
// a lease for an older token never carries over.
func (h *Holder) Start(token uint64, voters []uint64) {
	if token != h.token {
		h.expiry, h.held, h.refused = 0, false, nil
		clear(h.pending)
	}
	h.token = token
	h.voters = slices.Clone(voters)
}

// Stop forgets the lease (demotion, release).
func (h *Holder) Stop() {
	h.token, h.expiry, h.held, h.refused = 0, 0, false, nil
	clear(h.pending)
}

// OnRevoked records that voter from refused token because it revoked it.
// Revocations are durable, so these refusals add up across requests; it
// returns true once a majority of the voters refused: no request under
// token can ever be granted again.
func (h *Holder) OnRevoked(from, token uint64) bool {
	if token != h.token || h.token == 0 || !slices.Contains(h.voters, from) {
		return false
	}
	if !slices.Contains(h.refused, from) {
		h.refused = append(h.refused, from)
	}
	n := 0
	for _, v := range h.refused {
		if slices.Contains(h.voters, v) {
			n++
		}
	}
	return n >= len(h.voters)/2+1
}

// Token is the token being held (0 when idle).
func (h *Holder) Token() uint64 { return h.token }

// Next numbers a new request sent at now.
func (h *Holder) Next(now time.Duration) uint64 {
	h.seq++
	h.pending[h.seq] = &leaseRound{sent: now}
	for s, r := range h.pending {
		if HolderExpiry(h.cfg, r.sent) <= now {
			delete(h.pending, s)
		}
	}
	return h.seq
}

// OnGrant counts a grant from voter from for request seq. It returns true
// when the lease was extended.
func (h *Holder) OnGrant(from, token, seq uint64, now time.Duration) bool {
	r, ok := h.pending[seq]
	if !ok || token != h.token || h.token == 0 || !slices.Contains(h.voters, from) || slices.Contains(r.grants, from) {
		return false
	}
	r.grants = append(r.grants, from)
	if len(r.grants) < len(h.voters)/2+1 {
		return false
	}
	e := HolderExpiry(h.cfg, r.sent)
	if e <= h.expiry || e <= now {
		return false
	}
	h.expiry = e
	return true
}

// Valid reports whether the lease is held at now.
func (h *Holder) Valid(now time.Duration) bool { return h.token != 0 && now < h.expiry }

// Expiry is the current lease end (holder clock).
func (h *Holder) Expiry() time.Duration { return h.expiry }
