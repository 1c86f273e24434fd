package mesh

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"
)

// joinLoop joins the seeds at Start and keeps re-joining them. memberlist
// never merges two sides of a partition once each has reaped the other,
// so every RejoinInterval each seed that is not a live member is contacted
// again. Until the first join succeeds (and while we are alone) it retries
// faster, so a cluster whose nodes start in any order forms quickly.
func (m *Mesh) joinLoop() {
	defer m.wg.Done()
	retry := min(m.cfg.RejoinInterval, time.Second)
	failing := make(map[string]bool) // seeds whose last join failed, to warn once
	joined := false
	for {
		for _, seed := range m.seedsToJoin() {
			select {
			case <-m.stop:
				return
			default:
			}
			n, err := m.ml.Join([]string{seed})
			switch {
			case n > 0:
				joined = true
				delete(failing, seed)
				m.log.Info("joined seed", "seed", seed)
			case !failing[seed]:
				failing[seed] = true
				// A seed with another ClusterName closes the connection
				// (EOF); another EncryptKey fails decryption.
				m.log.Warn("cannot join seed; will retry", "seed", seed, "err", errText(err),
					"hint", "is the seed up, with the same ClusterName and EncryptKey?")
			default:
				m.log.Debug("cannot join seed", "seed", seed, "err", errText(err))
			}
		}
		if len(m.cfg.Seeds) == 0 || m.NumAlive() > 1 {
			joined = true
		}
		wait := m.cfg.RejoinInterval
		if !joined {
			wait = retry
		}
		t := time.NewTimer(wait)
		select {
		case <-m.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// errText flattens memberlist's multierror ("1 error occurred:\n\t* ...")
// into one line.
func errText(err error) string {
	if err == nil {
		return "no seed answered"
	}
	if me, ok := err.(interface{ WrappedErrors() []error }); ok {
		var parts []string
		for _, e := range me.WrappedErrors() {
			parts = append(parts, e.Error())
		}
		if len(parts) > 0 {
			return strings.Join(parts, "; ")
		}
	}
	return err.Error()
}

// seedsToJoin lists the seeds that are neither us nor a live member.
func (m *Mesh) seedsToJoin() []string {
	m.mu.Lock()
	live := m.view.liveAddrs()
	m.mu.Unlock()
	return selectSeeds(m.cfg.Seeds, live, m.self.is, resolveHost)
}

// selectSeeds returns the seeds to contact: those not naming ourselves
// and not the address of a live member (live is keyed by "ip:port"). A host
// name is resolved; if that fails the seed is kept, and memberlist's Join
// reports the error.
func selectSeeds(seeds []string, live map[string]string, isSelf func(net.IP, int) bool,
	resolve func(string) ([]net.IP, error)) []string {
	var out []string
	for _, seed := range seeds {
		host, port, err := splitSeed(seed)
		if err != nil {
			continue // rejected by validate; kept out of Join for safety
		}
		var ips []net.IP
		if ip := net.ParseIP(host); ip != nil {
			ips = []net.IP{ip}
		} else if ips, err = resolve(host); err != nil {
			out = append(out, seed)
			continue
		}
		skip := false
		for _, ip := range ips {
			_, isLive := live[net.JoinHostPort(ip.String(), strconv.Itoa(port))]
			if isSelf(ip, port) || isLive {
				skip = true
				break
			}
		}
		if !skip {
			out = append(out, seed)
		}
	}
	return out
}

// resolveTimeout bounds a seed's DNS lookup in the rejoin loop.
const resolveTimeout = 2 * time.Second

func resolveHost(host string) ([]net.IP, error) {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, nil
}

// selfAddrs recognises our own gossip address in a seed list, which all
// nodes usually share: joining ourselves is useless work every round.
type selfAddrs struct {
	ports []int
	ips   []net.IP
	// anyLocal: bound to the unspecified address, so every loopback and
	// local interface address is us.
	anyLocal bool
}

func newSelfAddrs(bindIP net.IP, bindPort int, advIP net.IP, advPort int) selfAddrs {
	s := selfAddrs{ports: []int{bindPort}, ips: []net.IP{bindIP, advIP}}
	if advPort != bindPort {
		s.ports = append(s.ports, advPort)
	}
	if bindIP.IsUnspecified() {
		s.anyLocal = true
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					s.ips = append(s.ips, ipn.IP)
				}
			}
		}
	}
	return s
}

func (s selfAddrs) is(ip net.IP, port int) bool {
	portMatch := false
	for _, p := range s.ports {
		portMatch = portMatch || p == port
	}
	if !portMatch {
		return false
	}
	if s.anyLocal && ip.IsLoopback() {
		return true
	}
	for _, own := range s.ips {
		if own != nil && own.Equal(ip) {
			return true
		}
	}
	return false
}
