package chaos

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/internal/cluster"
)

// The probe asks every node, every ProbeInterval, whether it would accept
// a write, from inside the node's own network namespace (so a node cut
// off from the rest is still asked, as a client on its side of the
// partition would ask it). "Would accept a write" is answered the honest
// way: a real insert with a short timeout. A PostgreSQL that is out of
// recovery but whose commits wait on the lease gate does not accept
// writes, and only a commit that returns shows that it does. The probe's
// inserts go into the same table as the workload's and are checked like
// them (lost, split-brain). Alongside, the node's /primary health check
// (the one HAProxy uses) is sampled.

// ProbeInterval is how often each node is asked.
const ProbeInterval = 100 * time.Millisecond

// Sample is one probe of one node.
type Sample struct {
	Node  int
	Round int // (Sent - start) / ProbeInterval
	// API: /primary answered 200 between APISent and APIDone.
	API              bool
	APISent, APIDone time.Time
}

// Probe collects samples.
type Probe struct {
	mu      sync.Mutex
	samples []Sample
}

// Samples returns a copy.
func (p *Probe) Samples() []Sample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Sample(nil), p.samples...)
}

func (p *Probe) add(s Sample) {
	p.mu.Lock()
	p.samples = append(p.samples, s)
	p.mu.Unlock()
}

// runWrites probes n with real inserts (logged as client "probe-<node>")
// until ctx ends. Each insert has timeout; one is started every
// ProbeInterval on its own connection, so a hung one does not delay the
// next round (at most a few are in flight).
func runProbeWrites(ctx context.Context, n *cluster.Node, log *Log, timeout time.Duration) {
	cfg, err := pgConfig(n.DSN(), n.DialContext)
	if err != nil {
		return
	}
	cfg.ConnectTimeout = timeout
	name := "probe-" + n.Name
	// A small pool of connections, each used by one probe at a time.
	pool := make(chan *pgx.Conn, 4)
	for range 4 {
		pool <- nil
	}
	t := time.NewTicker(ProbeInterval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var conn *pgx.Conn
		select {
		case conn = <-pool:
		default:
			continue // every connection is busy with a hung probe
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool <- probeOnce(ctx, cfg, conn, name, log, timeout)
		}()
	}
}

func probeOnce(ctx context.Context, cfg *pgx.ConnConfig, conn *pgx.Conn, name string, log *Log, timeout time.Duration) *pgx.Conn {
	if conn == nil {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := pgx.ConnectConfig(cctx, cfg)
		cancel()
		if err != nil {
			return nil
		}
		conn = c
	}
	op := Op{ID: log.nextID(), Client: name, Sent: time.Now()}
	ictx, cancel := context.WithTimeout(ctx, timeout)
	var tok string
	err := conn.QueryRow(ictx, insertSQL, op.ID, name).Scan(&op.Port, &tok, &op.Timeline, &op.LSN)
	cancel()
	op.Done = time.Now()
	if err != nil {
		op.Err = shortErr(err)
		if ctx.Err() != nil {
			op.Err = "run ended: " + op.Err
		}
		log.add(op)
		cctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		conn.Close(cctx)
		cancel()
		return nil
	}
	op.OK = true
	op.Token, op.TokenErr = parseWriterToken(tok)
	log.add(op)
	return conn
}

// runProbeAPI samples n's /primary every ProbeInterval until ctx ends.
func runProbeAPI(ctx context.Context, n *cluster.Node, p *Probe, start time.Time) {
	hc := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DialContext: n.DialContext, MaxIdleConnsPerHost: 2}}
	defer hc.CloseIdleConnections()
	t := time.NewTicker(ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := Sample{Node: n.ID, APISent: time.Now()}
		s.Round = int(s.APISent.Sub(start) / ProbeInterval)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.APIURL()+"/primary", nil)
		if err != nil {
			return
		}
		resp, err := hc.Do(req)
		s.APIDone = time.Now()
		if err == nil {
			s.API = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return
		}
		p.add(s)
	}
}
