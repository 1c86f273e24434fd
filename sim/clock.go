package sim

import "time"

// clock is one node's monotonic clock as a function of simulated real
// time: a straight line of slope rate through (realAt, base). Changing the
// rate starts a new segment, so the reading never jumps. A paused process
// does not stop its clock (CLOCK_MONOTONIC keeps counting during a GC or
// VM freeze): it resumes with a jump, which is exactly the case the lease
// arithmetic must survive.
type clock struct {
	base   time.Duration // reading at realAt
	realAt time.Duration
	rate   float64
}

func newClock(offset time.Duration, rate float64) *clock {
	return &clock{base: offset, rate: rate}
}

// at returns the clock reading at real time t (t ≥ realAt).
func (c *clock) at(t time.Duration) time.Duration {
	return c.base + time.Duration(float64(t-c.realAt)*c.rate)
}

// setRate changes the rate from real time t on.
func (c *clock) setRate(t time.Duration, rate float64) {
	c.base = c.at(t)
	c.realAt = t
	c.rate = rate
}
