package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// A load-balancer check: a root path answering 200 or 503 from the local
// view, with Patroni's semantics (see doc.go).
type check struct {
	path string
	// lag: ?lag= is read (and a bad one is a 400). tags: ?tag_<key>=
	// filters apply. Checks that ignore them (the primary ones, liveness)
	// keep ignoring them whatever they are, as Patroni does.
	lag, tags bool
	eval      func(s *server, in *checkInput) (bool, string)
}

func (s *server) checks() []check {
	return []check{
		{path: "/", eval: (*server).primaryCheck},
		{path: "/primary", eval: (*server).primaryCheck},
		{path: "/read-write", eval: (*server).primaryCheck},
		{path: "/leader", eval: (*server).primaryCheck},
		{path: "/replica", lag: true, tags: true, eval: (*server).replicaCheck},
		{path: "/read-only", lag: true, tags: true, eval: (*server).readOnlyCheck},
		{path: "/health", tags: true, eval: (*server).healthCheck},
		{path: "/liveness", eval: (*server).livenessCheck},
		{path: "/readiness", lag: true, eval: (*server).readinessCheck},
	}
}

// checkInput is what one check request looks at.
type checkInput struct {
	local pg.Health
	node  NodeInfo
	query url.Values

	maxLag    uint64
	hasMaxLag bool
}

// isWritablePrimary is THE primary predicate of every check endpoint:
// the local PostgreSQL runs, answers and is out of recovery, and — when
// the source takes part in an election — this node holds the primary
// lease, so a load balancer never sends writes to a primary that has
// been, or is about to be, replaced.
func (s *server) isWritablePrimary(h pg.Health) bool {
	if !(h.Running && h.Accepting && !h.InRecovery) {
		return false
	}
	if lh, ok := s.src.(LeaseHolder); ok {
		return lh.HoldsLease()
	}
	return true
}

// check registers one check path. It answers GET with a small status
// document and HEAD and OPTIONS with the status line only: HAProxy's
// "option httpchk" sends OPTIONS and reads nothing but the code.
func (s *server) check(r *mux.Router, c check) {
	r.Handle(c.path, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		setRoute(w, c.path)
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			s.checkError(w, req, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: GET, HEAD, OPTIONS)", req.Method, c.path))
			return
		}
		if !s.allow(w, req, accessRead, true) {
			return
		}
		in := checkInput{local: s.src.LocalHealth(), node: s.src.Node()}
		if c.lag || c.tags {
			q, err := url.ParseQuery(req.URL.RawQuery)
			if err != nil {
				s.checkError(w, req, http.StatusBadRequest, "invalid query string: "+err.Error())
				return
			}
			in.query = q
			if vals, ok := q["lag"]; ok && c.lag {
				// Like Patroni, the first value counts.
				n, err := ParseLag(vals[0])
				if err != nil {
					s.checkError(w, req, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "api: "))
					return
				}
				in.maxLag, in.hasMaxLag = n, true
			}
		}
		ok, reason := c.eval(s, &in)
		if ok && c.tags {
			ok, reason = matchTags(in.node.Tags, in.query)
		}
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		if req.Method != http.MethodGet {
			w.WriteHeader(code)
			return
		}
		buf, err := s.encode(checkStatusOf(&in, reason))
		if err != nil {
			// Never hide the verdict behind an encoding problem.
			s.log.Error("api: encoding check status", "path", c.path, "err", err)
			w.WriteHeader(code)
			return
		}
		writeJSON(w, req, code, buf.Bytes())
		s.putBuffer(buf)
	}))
}

// checkError answers a check request that could not be evaluated: the bare
// status line on HEAD and OPTIONS, the error envelope otherwise.
func (s *server) checkError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if r.Method == http.MethodHead || r.Method == http.MethodOptions {
		w.WriteHeader(code)
		return
	}
	s.writeEnvelope(w, r, code, nil, msg)
}

func (s *server) primaryCheck(in *checkInput) (bool, string) {
	if s.isWritablePrimary(in.local) {
		return true, ""
	}
	if r := notServing(in.local); r != "" {
		return false, r
	}
	return false, "PostgreSQL is in recovery"
}

// replicaServing is the common core of /replica, /read-only and
// /readiness for a standby: it runs, answers, is in recovery, streams, and
// is within ?lag= when one is given.
func (s *server) replicaServing(in *checkInput) (bool, string) {
	h := in.local
	if r := notServing(h); r != "" {
		return false, r
	}
	if !h.InRecovery {
		return false, "PostgreSQL is not in recovery"
	}
	if !h.Streaming {
		return false, "WAL receiver is " + receiverState(h)
	}
	if !in.hasMaxLag {
		return true, ""
	}
	// Only now is the cluster view needed: the primary's position.
	v := s.snapshot()
	lag, known := localLagBytes(&v, h, in.node.NodeID)
	if !known {
		return false, "replication lag is unknown"
	}
	if lag > in.maxLag {
		return false, "replication lag " + strconv.FormatUint(lag, 10) + " bytes exceeds maximum " + strconv.FormatUint(in.maxLag, 10)
	}
	return true, ""
}

func (s *server) replicaCheck(in *checkInput) (bool, string) {
	if ok, r := s.replicaServing(in); !ok {
		return false, r
	}
	if noLoadBalance(in.node.Tags) {
		return false, "node is tagged noloadbalance"
	}
	if want := in.query.Get("replication_state"); want != "" {
		if got := receiverState(in.local); !strings.EqualFold(got, want) {
			return false, "replication state is " + got + ", not " + want
		}
	}
	return true, ""
}

// readOnlyCheck: the primary serves reads too (whatever its tags, as in
// Patroni); a standby must pass the replica check minus the state filter.
func (s *server) readOnlyCheck(in *checkInput) (bool, string) {
	if s.isWritablePrimary(in.local) {
		return true, ""
	}
	if ok, r := s.replicaServing(in); !ok {
		return false, r
	}
	if noLoadBalance(in.node.Tags) {
		return false, "node is tagged noloadbalance"
	}
	return true, ""
}

func (s *server) healthCheck(in *checkInput) (bool, string) {
	if r := notServing(in.local); r != "" {
		return false, r
	}
	return true, ""
}

// livenessCheck: answering is the proof that the daemon is alive.
func (s *server) livenessCheck(*checkInput) (bool, string) { return true, "" }

// readinessCheck: ready to take the traffic of its role; the noloadbalance
// tag is about load balancers, not readiness, so it is not consulted.
func (s *server) readinessCheck(in *checkInput) (bool, string) {
	if s.isWritablePrimary(in.local) {
		return true, ""
	}
	return s.replicaServing(in)
}

// notServing says why PostgreSQL cannot serve at all, or "" if it can.
func notServing(h pg.Health) string {
	switch {
	case !h.Running:
		return "PostgreSQL is not running"
	case !h.Accepting:
		return "PostgreSQL does not accept connections"
	}
	return ""
}

// localLagBytes is this replica's distance behind the primary: the larger
// of what it gossips about itself and the reported primary's gossiped
// position minus the local replay position (Patroni's own measure). Taking
// the larger errs toward keeping a lagging replica out of rotation.
func localLagBytes(v *view, h pg.Health, selfID int) (uint64, bool) {
	var lag uint64
	known := false
	self := v.self
	if self < 0 {
		self = v.find(selfID)
	}
	if self >= 0 {
		lag, known = v.members[self].State.LagBytes, true
	}
	if v.primary >= 0 && v.primary != self {
		pos := uint64(h.ReplayLSN)
		if pos == 0 {
			pos = uint64(h.ReceiveLSN)
		}
		if pos != 0 {
			if p := v.members[v.primary].State.LSN; p > pos {
				lag = max(lag, p-pos)
			}
			known = true
		}
	}
	return lag, known
}

// noLoadBalance reads the noloadbalance tag the way Patroni reads booleans.
func noLoadBalance(tags map[string]string) bool {
	switch strings.ToLower(strings.TrimSpace(tags["noloadbalance"])) {
	case "true", "yes", "on", "1":
		return true
	}
	return false
}

// matchTags applies ?tag_<key>=<value> filters as Patroni does: every
// filtered tag must be set on this node with exactly that value (the first
// value when a key repeats).
func matchTags(tags map[string]string, q url.Values) (bool, string) {
	var keys []string
	for k := range q {
		if strings.HasPrefix(k, "tag_") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // a stable reason for a stable config
	for _, k := range keys {
		name, want := k[len("tag_"):], q[k][0]
		got, ok := tags[name]
		if !ok {
			return false, "tag " + strconv.Quote(name) + " is not set"
		}
		if got != want {
			return false, "tag " + strconv.Quote(name) + " is " + strconv.Quote(got) + ", not " + strconv.Quote(want)
		}
	}
	return true, ""
}

// checkStatus is the GET body of a check: a small cousin of Patroni's node
// status document, enough for a human reading an HAProxy stats page.
type checkStatus struct {
	State            string            `json:"state"`
	Role             mesh.Role         `json:"role"`
	ServerVersion    string            `json:"server_version,omitempty"`
	Timeline         uint32            `json:"timeline"`
	XLog             checkXLog         `json:"xlog"`
	ReplicationState string            `json:"replication_state,omitempty"`
	Tags             map[string]string `json:"tags"`
	SystemID         string            `json:"database_system_identifier,omitempty"`
	Ramd             checkRamd         `json:"ramd"`
	// Reason says why the answer is 503.
	Reason string `json:"reason,omitempty"`
}

type checkXLog struct {
	Location         uint64 `json:"location,omitempty"`
	ReceivedLocation uint64 `json:"received_location,omitempty"`
	ReplayedLocation uint64 `json:"replayed_location,omitempty"`
}

type checkRamd struct {
	Version string `json:"version"`
	Scope   string `json:"scope"`
	Name    string `json:"name"`
	NodeID  int    `json:"node_id"`
}

func checkStatusOf(in *checkInput, reason string) *checkStatus {
	h := in.local
	cs := &checkStatus{
		State:         "running",
		Role:          localRole(h),
		ServerVersion: h.Version,
		Timeline:      h.Timeline,
		Tags:          tagsOrEmpty(in.node.Tags),
		Ramd:          checkRamd{Version: in.node.Version, Scope: in.node.ClusterName, Name: in.node.Name, NodeID: in.node.NodeID},
		Reason:        reason,
	}
	switch {
	case !h.Running:
		cs.State = "stopped"
	case !h.Accepting:
		cs.State = "not_accepting"
	}
	if h.SystemID != 0 {
		cs.SystemID = strconv.FormatUint(h.SystemID, 10)
	}
	switch cs.Role {
	case mesh.RolePrimary:
		cs.XLog.Location = uint64(h.CurrentLSN)
	case mesh.RoleReplica:
		cs.XLog.ReceivedLocation = uint64(h.ReceiveLSN)
		cs.XLog.ReplayedLocation = uint64(h.ReplayLSN)
		cs.ReplicationState = receiverState(h)
	}
	return cs
}
