package detector

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ramd/ramd/mesh"
)

const sec = time.Second

func healthy(wall int64) *mesh.Member {
	return &mesh.Member{Liveness: mesh.Alive, State: mesh.NodeState{NodeID: 1, Role: mesh.RolePrimary, PGRunning: true, Healthy: true, ProducedAt: wall}}
}

func with(f func(*mesh.Member)) func(int64) *mesh.Member {
	return func(wall int64) *mesh.Member {
		m := healthy(wall)
		f(m)
		return m
	}
}

var (
	okM      = healthy
	deadM    = with(func(m *mesh.Member) { m.Liveness = mesh.Dead })
	suspectM = with(func(m *mesh.Member) { m.Liveness = mesh.Suspect })
	staleM   = func(wall int64) *mesh.Member { return healthy(wall - 10000) }
	pgDownM  = with(func(m *mesh.Member) { m.State.PGRunning, m.State.Healthy = false, false })
	goneM    = func(int64) *mesh.Member { return nil }
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.FailObservations = 1
	if _, err := New(c); !errors.Is(err, ErrConfig) {
		t.Errorf("one observation accepted: %v", err)
	}
	c = DefaultConfig()
	c.PrimaryStartTimeout = 0
	if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), "detector:") {
		t.Errorf("start timeout: %v", err)
	}
}

func TestDetectorTable(t *testing.T) {
	type step struct {
		m     func(int64) *mesh.Member
		lease bool // a lease request arrived at this step
	}
	rep := func(n int, s step) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	cat := func(ss ...[]step) (out []step) {
		for _, s := range ss {
			out = append(out, s...)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		steps []step // one every 500ms
		want  Status
		why   string
	}{
		{"healthy", rep(10, step{m: okM}), PrimaryHealthy, ""},
		{"dead, briefly", rep(2, step{m: deadM}), PrimarySuspect, "dead"},
		{"dead long enough", rep(3, step{m: deadM}), PrimaryFailed, "dead"},
		{"gone from the mesh", rep(4, step{m: goneM}), PrimaryFailed, "not a mesh member"},
		{"dead but renewing its lease", rep(10, step{m: deadM, lease: true}), PrimarySuspect, "renewed its lease"},
		{"suspect forever is not failed", rep(20, step{m: suspectM}), PrimarySuspect, "suspect"},
		{"stale gossip once", cat(rep(3, step{m: okM}), rep(1, step{m: staleM})), PrimarySuspect, "stale"},
		{"stale gossip then fresh", cat(rep(1, step{m: staleM}), rep(1, step{m: okM})), PrimaryHealthy, ""},
		{"stale gossip forever", rep(30, step{m: staleM}), PrimarySuspect, "stale"},
		{"dead streak interrupted", cat(rep(2, step{m: deadM}), rep(1, step{m: suspectM}), rep(2, step{m: deadM})), PrimarySuspect, "dead"},
		{"pg crashed, daemon restarting", rep(10, step{m: pgDownM}), PrimarySuspect, "restart it in place"},
		{"pg crashed beyond start timeout", rep(22, step{m: pgDownM}), PrimaryFailed, "primary_start_timeout"},
		{"pg back in time", cat(rep(15, step{m: pgDownM}), rep(1, step{m: okM}), rep(15, step{m: pgDownM})), PrimarySuspect, "restart it in place"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			var v Verdict
			var lastLease time.Duration
			seen := false
			for i, s := range tc.steps {
				now := time.Duration(i) * 500 * time.Millisecond
				wall := int64(1e12) + now.Milliseconds()
				if s.lease {
					lastLease, seen = now, true
				}
				v = d.Observe(Observation{Now: now, WallNow: wall, PrimaryID: 1, Primary: s.m(wall), LeaseSeen: seen, LastLeaseRequest: lastLease})
			}
			if v.Status != tc.want || !strings.Contains(v.Reason, tc.why) {
				t.Errorf("got %v %q, want %v containing %q", v.Status, v.Reason, tc.want, tc.why)
			}
		})
	}
}

func TestNewPrimaryResets(t *testing.T) {
	d, _ := New(DefaultConfig())
	for i := 0; i < 5; i++ {
		d.Observe(Observation{Now: time.Duration(i) * sec, PrimaryID: 1})
	}
	v := d.Observe(Observation{Now: 6 * sec, PrimaryID: 2})
	if v.Status != PrimarySuspect {
		t.Errorf("a new primary inherited the old streak: %v", v)
	}
}

// TestDetectorProperties runs random observation streams and checks:
//   - Failed only after FailObservations consecutive failing observations
//     of one kind spanning FailAfter (PrimaryStartTimeout for PostgreSQL);
//   - any healthy observation gives Healthy;
//   - a healthy stream with isolated stale/suspect observations (never
//     two in a row) never fails.
func TestDetectorProperties(t *testing.T) {
	cfg := DefaultConfig()
	kinds := []func(int64) *mesh.Member{okM, deadM, suspectM, staleM, pgDownM, goneM}
	for seed := uint64(0); seed < 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		d, _ := New(cfg)
		now := time.Duration(0)
		var hist []int
		for i := 0; i < 200; i++ {
			now += time.Duration(rng.IntN(1000)) * time.Millisecond
			k := rng.IntN(len(kinds))
			if rng.IntN(3) > 0 && len(hist) > 0 {
				k = hist[len(hist)-1] // make streaks likely
			}
			hist = append(hist, k)
			wall := int64(1e12) + now.Milliseconds()
			v := d.Observe(Observation{Now: now, WallNow: wall, PrimaryID: 1, Primary: kinds[k](wall)})
			if k == 0 && v.Status != PrimaryHealthy {
				t.Fatalf("seed %d: healthy observation gave %v", seed, v)
			}
			if v.Status == PrimaryFailed {
				n := 0
				for j := len(hist) - 1; j >= 0 && hist[j] == k || (j >= 0 && isDown(hist[j]) && isDown(k)); j-- {
					n++
				}
				if n < cfg.FailObservations || now-v.Since < cfg.FailAfter || (k == 4 && now-v.Since < cfg.PrimaryStartTimeout) {
					t.Fatalf("seed %d: failed after %d observations over %v (kind %d)", seed, n, now-v.Since, k)
				}
				if k == 2 || k == 3 || k == 0 {
					t.Fatalf("seed %d: kind %d failed", seed, k)
				}
			}
		}
		// Isolated blips in a healthy stream.
		d, _ = New(cfg)
		prevBlip := false
		for i := 0; i < 200; i++ {
			now += 500 * time.Millisecond
			wall := int64(1e12) + now.Milliseconds()
			m := okM(wall)
			if !prevBlip && rng.IntN(2) == 0 {
				m = kinds[1+rng.IntN(len(kinds)-1)](wall)
				prevBlip = true
			} else {
				prevBlip = false
			}
			if v := d.Observe(Observation{Now: now, WallNow: wall, PrimaryID: 1, Primary: m}); v.Status == PrimaryFailed {
				t.Fatalf("seed %d: an isolated blip failed the primary: %v", seed, v)
			}
		}
	}
}

// dead and gone are the same condition (daemon down).
func isDown(k int) bool { return k == 1 || k == 5 }
