package detector

import (
	"errors"
	"fmt"
	"time"

	"github.com/ramd/ramd/mesh"
)

// Config tunes the detector. Durations are logical (monotonic) time except
// StaleAfter, which is compared with gossip wall-clock stamps.
type Config struct {
	// FailAfter: the failing condition must persist this long. Default 1s.
	FailAfter time.Duration
	// FailObservations: and be seen in this many consecutive
	// observations. Default 3.
	FailObservations int
	// StaleAfter: a gossiped state produced longer ago than this (by its
	// ProducedAt, Unix milliseconds, against Observation.WallNow) is
	// stale. Default 3s.
	StaleAfter time.Duration
	// LeaseSilence: a lease request received within this much logical time
	// proves the primary's daemon alive. Default 2s (twice the default
	// renew interval).
	LeaseSilence time.Duration
	// PrimaryStartTimeout: how long the primary's own daemon gets to make
	// PostgreSQL healthy again in place before this is a failure.
	// Default 10s.
	PrimaryStartTimeout time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{FailAfter: time.Second, FailObservations: 3, StaleAfter: 3 * time.Second, LeaseSilence: 2 * time.Second, PrimaryStartTimeout: 10 * time.Second}
}

// ErrConfig wraps every Validate failure.
var ErrConfig = errors.New("detector: invalid config")

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.FailAfter < 0:
		return fmt.Errorf("%w: fail_after %v is negative", ErrConfig, c.FailAfter)
	case c.FailObservations < 2:
		return fmt.Errorf("%w: fail_observations %d must be at least 2 (one observation is never enough)", ErrConfig, c.FailObservations)
	case c.StaleAfter <= 0:
		return fmt.Errorf("%w: stale_after %v must be positive", ErrConfig, c.StaleAfter)
	case c.LeaseSilence <= 0:
		return fmt.Errorf("%w: lease_silence %v must be positive", ErrConfig, c.LeaseSilence)
	case c.PrimaryStartTimeout < c.FailAfter:
		return fmt.Errorf("%w: primary_start_timeout %v must be at least fail_after %v", ErrConfig, c.PrimaryStartTimeout, c.FailAfter)
	}
	return nil
}

// Status is the detector's opinion of the primary.
type Status int

const (
	PrimaryHealthy Status = iota
	PrimarySuspect
	PrimaryFailed
)

func (s Status) String() string {
	switch s {
	case PrimaryHealthy:
		return "healthy"
	case PrimarySuspect:
		return "suspect"
	case PrimaryFailed:
		return "failed"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Verdict is the result of one observation.
type Verdict struct {
	Status Status
	// Reason explains the status (always set unless healthy).
	Reason string
	// Since is when the current condition was first observed.
	Since time.Duration
}

// Observation is one look at the primary.
type Observation struct {
	// Now is the logical clock.
	Now time.Duration
	// WallNow is the observer's wall clock in Unix milliseconds, compared
	// with the gossiped ProducedAt only to judge staleness.
	WallNow int64
	// PrimaryID is the primary named by the applied cluster state.
	PrimaryID int
	// Primary is the primary's member entry; nil when the mesh does not
	// know it (never joined, or reaped after death).
	Primary *mesh.Member
	// LeaseSeen and LastLeaseRequest: when this node last received a
	// lease request from the primary (logical time).
	LeaseSeen        bool
	LastLeaseRequest time.Duration
}

// condition is the raw, single-observation classification.
type condition int

const (
	condHealthy condition = iota
	condSuspect
	condDaemonDown
	condPGDown
)

// Detector applies hysteresis to observations of one primary. The zero
// value is not usable; call New.
type Detector struct {
	cfg     Config
	primary int
	cond    condition
	since   time.Duration
	count   int
	reason  string
}

// New returns a detector. An invalid config is an error.
func New(c Config) (*Detector, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Detector{cfg: c, primary: -1}, nil
}

// classify judges one observation in isolation.
func (d *Detector) classify(o Observation) (condition, string) {
	leaseFresh := o.LeaseSeen && o.Now-o.LastLeaseRequest <= d.cfg.LeaseSilence
	m := o.Primary
	if m == nil {
		if leaseFresh {
			return condSuspect, "primary unknown to the mesh but renewing its lease"
		}
		return condDaemonDown, fmt.Sprintf("primary %d is not a mesh member", o.PrimaryID)
	}
	switch m.Liveness {
	case mesh.Dead, mesh.Left:
		if leaseFresh {
			return condSuspect, fmt.Sprintf("primary %d is %s in the mesh but renewed its lease", o.PrimaryID, m.Liveness)
		}
		return condDaemonDown, fmt.Sprintf("primary %d is %s", o.PrimaryID, m.Liveness)
	case mesh.Suspect:
		return condSuspect, fmt.Sprintf("primary %d is suspect in the mesh", o.PrimaryID)
	case mesh.Alive:
	default:
		return condSuspect, fmt.Sprintf("primary %d has unknown liveness %q", o.PrimaryID, m.Liveness)
	}
	age := time.Duration(o.WallNow-m.State.ProducedAt) * time.Millisecond
	if age > d.cfg.StaleAfter {
		return condSuspect, fmt.Sprintf("primary %d state is stale (%v old)", o.PrimaryID, age)
	}
	switch {
	case !m.State.PGRunning:
		return condPGDown, fmt.Sprintf("postgresql on primary %d is not running", o.PrimaryID)
	case !m.State.Healthy:
		return condPGDown, fmt.Sprintf("postgresql on primary %d is unhealthy", o.PrimaryID)
	case m.State.Role != mesh.RolePrimary:
		return condPGDown, fmt.Sprintf("primary %d runs postgresql as %s", o.PrimaryID, m.State.Role)
	}
	return condHealthy, ""
}

// Observe takes one observation and returns the verdict.
func (d *Detector) Observe(o Observation) Verdict {
	if o.PrimaryID != d.primary {
		// A new primary starts with a clean slate.
		d.primary, d.cond, d.count = o.PrimaryID, condHealthy, 0
	}
	c, why := d.classify(o)
	if c != d.cond || d.count == 0 {
		d.cond, d.since, d.count = c, o.Now, 0
	}
	d.count++
	d.reason = why
	held := o.Now - d.since
	enough := d.count >= d.cfg.FailObservations
	switch c {
	case condHealthy:
		return Verdict{Status: PrimaryHealthy, Since: d.since}
	case condDaemonDown:
		if enough && held >= d.cfg.FailAfter {
			return Verdict{Status: PrimaryFailed, Reason: why, Since: d.since}
		}
		return Verdict{Status: PrimarySuspect, Reason: fmt.Sprintf("%s (%d/%d observations, %v/%v)", why, d.count, d.cfg.FailObservations, held, d.cfg.FailAfter), Since: d.since}
	case condPGDown:
		if enough && held >= d.cfg.PrimaryStartTimeout {
			return Verdict{Status: PrimaryFailed, Reason: fmt.Sprintf("%s for %v (primary_start_timeout %v)", why, held, d.cfg.PrimaryStartTimeout), Since: d.since}
		}
		return Verdict{Status: PrimarySuspect, Reason: fmt.Sprintf("%s; waiting %v for its daemon to restart it in place", why, d.cfg.PrimaryStartTimeout-held), Since: d.since}
	}
	return Verdict{Status: PrimarySuspect, Reason: why, Since: d.since}
}
