package daemon

import (
	"context"
	"time"
)

// runVitals collects PostgreSQL's vital signs for the metrics every
// monitoring.metrics_interval until ctx ends. It runs on its own goroutine
// with its own connection (pg.Vitals) and a timeout per round, so a slow
// statistics query can delay nothing but the next round: the health check
// and the failover loop never wait on it. The same tick refreshes the
// cheap, slowly changing gauges (mesh health score, last backup).
func (d *Daemon) runVitals(ctx context.Context) {
	interval := d.cfg.Monitoring.MetricsInterval.Duration
	// A round gets at most the interval, and never more than 10 s: the
	// queries take milliseconds on a healthy server.
	timeout := min(interval, 10*time.Second)
	v := d.pg.NewVitals()
	defer v.Close()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing := false
	for {
		d.metrics.SetMeshHealth(d.mesh.HealthScore())
		d.metrics.SetLastBackup(d.lastBackupTime())
		if _, running := d.pg.Running(); running && !d.restoring.Load() {
			rctx, cancel := context.WithTimeout(ctx, timeout)
			vs, err := v.Collect(rctx)
			cancel()
			switch {
			case err == nil:
				d.metrics.SetVitals(vs)
				failing = false
			case ctx.Err() != nil:
				return
			default:
				d.metrics.VitalsFailed()
				if !failing {
					// Once per outage, not every round.
					d.log.Warn("collecting PostgreSQL statistics for the metrics failed", "error", err)
				}
				failing = true
			}
		} else {
			v.Close()
			d.metrics.ClearVitals()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// lastBackupTime is when the newest successful backup on this node
// finished (zero: none).
func (d *Daemon) lastBackupTime() time.Time {
	var last time.Time
	for _, b := range d.LocalBackups() {
		if b.Status != "done" {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, b.Finished); err == nil && t.After(last) {
			last = t
		}
	}
	return last
}
