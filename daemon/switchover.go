package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/pg"
)

// stepDownTimeout bounds the clean stop of a primary stepping down.
const stepDownTimeout = 30 * time.Second

// stepDown carries out a planned switchover on the old primary: stop the
// lease gate (no commit is acknowledged from here on), stop PostgreSQL
// with a fast shutdown (its WAL senders first hand every record to the
// streaming replicas, up to the shutdown checkpoint), read where that
// checkpoint starts and release the lease with it, so that the
// coordinator promotes at once a replica holding everything. If the clean
// stop fails, it releases without a position (the release fences
// PostgreSQL) and the coordinator falls back to the usual choice.
func (f *failoverLoop) stepDown(a election.Action) {
	f.setWant(desired{role: wantFenced, token: a.Token, reason: "planned switchover: stepping down"})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), stepDownTimeout)
		defer cancel()
		began := time.Now()
		f.d.gate.suspend()
		err := f.d.pg.Stop(ctx, pg.StopFast)
		var final election.Position
		if err == nil {
			var tli uint32
			var at pg.LSN
			tli, at, err = f.d.pg.ShutdownPoint(ctx)
			final = election.Position{Timeline: tli, LSN: uint64(at)}
		}
		if err != nil {
			f.log.Error("planned switchover: clean stop failed; releasing without a final position", "error", err)
		} else {
			f.log.Info("planned switchover: PostgreSQL stopped cleanly", "final_timeline", final.Timeline, "final_lsn", pg.LSN(final.LSN).String(), "took", time.Since(began).String())
		}
		f.call(func() {
			if f.node == nil {
				return
			}
			if err != nil {
				f.node.Release(fmt.Sprintf("planned switchover (clean stop failed: %v)", err))
				return
			}
			f.node.ReleaseAfterStop("planned switchover", final)
		})
	}()
}

// call runs fn on the election loop's goroutine.
func (f *failoverLoop) call(fn func()) {
	f.calls <- fn
}
