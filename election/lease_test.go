package election

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestLeaseConfigValidate(t *testing.T) {
	if err := DefaultLeaseConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*LeaseConfig){
		"ttl zero":       func(c *LeaseConfig) { c.TTL = 0 },
		"renew slow":     func(c *LeaseConfig) { c.RenewInterval = c.TTL / 2 },
		"renew zero":     func(c *LeaseConfig) { c.RenewInterval = 0 },
		"drift negative": func(c *LeaseConfig) { c.MaxDrift = -0.1 },
		"drift huge":     func(c *LeaseConfig) { c.MaxDrift = 0.5 },
		"no safety":      func(c *LeaseConfig) { c.Safety = 0 },
		"margin eats ttl": func(c *LeaseConfig) {
			c.Safety = c.TTL / 3
		},
	} {
		c := DefaultLeaseConfig()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrLeaseConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestLeaseNeverOutlivesGrant: for random clock rates within MaxDrift,
// random offsets and message delays, the holder's lease ends (in real
// time) strictly before the grant that backs it.
func TestLeaseNeverOutlivesGrant(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 100000; i++ {
		c := LeaseConfig{
			TTL:      time.Duration(1+rng.IntN(60000)) * time.Millisecond,
			MaxDrift: rng.Float64() * 0.1,
			Safety:   time.Duration(1+rng.IntN(100)) * time.Microsecond,
		}
		c.RenewInterval = c.TTL / 4
		if c.Validate() != nil {
			continue
		}
		rate := func() float64 { return 1 - c.MaxDrift + 2*c.MaxDrift*rng.Float64() }
		hRate, gRate := rate(), rate()
		hOff, gOff := rng.Float64()*1e12, rng.Float64()*1e12  // clock offsets (ns)
		ts := rng.Float64() * 1e12                            // real send time
		tr := ts + rng.Float64()*float64(c.TTL)*rng.Float64() // real receive time
		sent := time.Duration(hOff + ts*hRate)
		recv := time.Duration(gOff + tr*gRate)
		// Real times at which each clock reaches its expiry.
		holderEnd := (float64(HolderExpiry(c, sent)) - hOff) / hRate
		grantEnd := (float64(GrantExpiry(c, recv)) - gOff) / gRate
		if !(holderEnd < grantEnd) {
			t.Fatalf("cfg %+v rates %.4f/%.4f: holder ends at %.0f, grant at %.0f", c, hRate, gRate, holderEnd, grantEnd)
		}
		// The coordinator's wait on a third clock covers the grant too.
		cRate := rate()
		remaining := GrantExpiry(c, recv) - recv // reported at recv
		waitEnd := tr + float64(WaitFor(c, remaining))/cRate
		if !(grantEnd <= waitEnd) {
			t.Fatalf("wait ends at %.0f before the grant at %.0f", waitEnd, grantEnd)
		}
	}
}

func TestGrantorAndHolder(t *testing.T) {
	c := LeaseConfig{TTL: 100, RenewInterval: 25, MaxDrift: 0, Safety: 5}
	st := bootstrapped(t)
	g := NewGrantor(c, 0, 0, true)
	if r := g.Remaining(1, 0); r != 105 {
		t.Errorf("amnesty remaining %v", r)
	}
	if ok, why := g.Grant(st, 2, 1, 200); ok {
		t.Error("granted to a non-primary")
	} else if why == "" {
		t.Error("no reason")
	}
	if ok, _ := g.Grant(st, 1, 2, 200); ok {
		t.Error("granted a future token")
	}
	if ok, _ := g.Grant(st, 1, 1, 200); !ok {
		t.Fatal("refused the primary")
	}
	rem, changed := g.Revoke(1, 250)
	if rem != 55 || !changed {
		t.Errorf("revoke: %v %v", rem, changed)
	}
	if ok, _ := g.Grant(st, 1, 1, 260); ok {
		t.Error("granted a revoked token")
	}
	if g.Release(1); g.Remaining(1, 260) != 0 {
		t.Error("release kept the grant")
	}

	h := NewHolder(c, 1)
	h.Start(1, []uint64{1, 2, 3})
	s1 := h.Next(10)
	if h.OnGrant(1, 1, s1, 11) || h.Valid(11) {
		t.Error("one grant of three made a lease")
	}
	if h.OnGrant(1, 1, s1, 11) {
		t.Error("duplicate grant counted")
	}
	if !h.OnGrant(2, 1, s1, 12) || !h.Valid(12) || h.Expiry() != 105 {
		t.Errorf("quorum: valid=%v expiry=%v", h.Valid(12), h.Expiry())
	}
	if h.Valid(105) {
		t.Error("valid at expiry")
	}
	if h.OnGrant(4, 1, s1, 13) {
		t.Error("non-voter counted")
	}
	h.Start(2, []uint64{1, 2, 3})
	if h.Valid(20) {
		t.Error("lease carried over a token change")
	}
}
