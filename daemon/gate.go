package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/gate"
)

// gateMargin is taken off the lease before the gate confirms a commit: a
// confirmation decided just before the lease ends must still reach
// PostgreSQL before it ends (see pg/gate's doc on late confirmations).
const gateMargin = 100 * time.Millisecond

// gateRunner keeps the lease gate (pg/gate) streaming from the local
// PostgreSQL while it runs as a primary, and stops it otherwise. With
// [failover] fencing = "lease", the primary's synchronous_standby_names
// names the gate, so every commit waits for a confirmation the gate gives
// only while this daemon holds the lease: a frozen or dead daemon confirms
// nothing, and its PostgreSQL acknowledges no more commits.
type gateRunner struct {
	d      *Daemon
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	g      *gate.Gate
	// sr enforces the synchronous modes (nil when synchronous_mode = off).
	sr *syncRep
	// closed: stop was called (daemon shutdown); the gate stays stopped.
	closed bool
	// suspended: stopped for a planned step-down, until resume (the next
	// promotion of this node).
	suspended bool
}

// gateSettings is what every node's managed configuration carries when
// fencing is on.
func gateSettings(fencing string) map[string]string {
	if fencing != "lease" {
		return nil
	}
	return gate.PrimarySettings(gate.DefaultAppName)
}

// update starts or stops the gate after a health check.
func (r *gateRunner) update(h pg.Health) {
	primary := h.Running && h.Accepting && !h.InRecovery
	c := r.d.effective()
	wantSync := c.Failover.SynchronousMode != "off"
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil && !r.closed && !r.suspended && (r.sr != nil) != wantSync {
		// synchronous_mode was switched on or off cluster-wide: restart
		// the gate with (or without) its replication watcher.
		r.stopLocked()
		r.d.log.Info("lease gate restarting for the new synchronous_mode", "synchronous_mode", c.Failover.SynchronousMode)
	}
	switch {
	case r.closed, r.suspended:
	case primary && r.cancel == nil:
		var sr *syncRep
		var ceiling func(gate.LSN) gate.LSN
		if wantSync {
			sr = newSyncRep(r.d.nodeLog.With("component", "syncrep"), r.d.pg.ConnString())
			ceiling = sr.ceiling
		}
		g, err := gate.New(gate.Config{
			ConnString: fmt.Sprintf("host=%s port=%d user=%s replication=true sslmode=disable application_name=%s",
				c.PostgreSQL.SocketDirectory, c.PostgreSQL.Port, c.PostgreSQL.User, gate.DefaultAppName),
			Allowed: r.allowed,
			Ceiling: ceiling,
			// New WAL is confirmed the moment it arrives; the interval only
			// re-checks positions held back while the lease was not valid.
			// 10 ms (the gate's default) costs 100 wake-ups a second on an
			// idle primary; 100 ms delays a held commit by at most that
			// after the lease returns.
			StatusInterval: 100 * time.Millisecond,
			Logger:         r.d.nodeLog.With("component", "gate"),
		})
		if err != nil {
			r.d.log.Error("cannot create the lease gate", "error", err)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		r.g, r.cancel, r.done, r.sr = g, cancel, make(chan struct{}), sr
		done := r.done
		var wg sync.WaitGroup
		if sr != nil {
			sr.kick = g.Kick
			wg.Go(func() { sr.run(ctx) })
		}
		wg.Go(func() { _ = g.Run(ctx) })
		go func() {
			wg.Wait()
			close(done)
		}()
		r.d.log.Info("lease gate started: commits are acknowledged only while this node holds the lease")
	case !primary && r.cancel != nil:
		r.stopLocked()
		r.d.log.Info("lease gate stopped: PostgreSQL is no longer a primary")
	}
}

// allowed is the gate's check, made right before every confirmation: the
// lease must still be valid gateMargin from now.
func (r *gateRunner) allowed() bool {
	return r.d.failover != nil && r.d.failover.holdsLeaseAt(time.Now().Add(gateMargin))
}

// stop stops the gate for good (daemon shutdown).
func (r *gateRunner) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.stopLocked()
}

func (r *gateRunner) stopLocked() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel, r.done, r.g, r.sr = nil, nil, nil, nil
}

// suspend stops the gate until resume: a primary stepping down stops it
// before PostgreSQL (see Daemon.shutdown for why), so that no commit is
// acknowledged during the step-down.
func (r *gateRunner) suspend() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.suspended = true
	r.stopLocked()
}

// resume lets update start the gate again.
func (r *gateRunner) resume() {
	r.mu.Lock()
	r.suspended = false
	r.mu.Unlock()
}

// syncRep is the running synchronous replication watcher, if any.
func (r *gateRunner) syncRep() *syncRep {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sr
}
