package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// Operator is what the mutating cluster endpoints need from the daemon.
// A Source that does not implement it answers them with 501.
type Operator interface {
	// Switchover hands the primary role to candidate (0: the best replica)
	// and returns once the new primary serves, or ctx ends. With a
	// non-zero at it only schedules it (Scheduled in the result).
	Switchover(ctx context.Context, candidate int, at time.Time) (SwitchoverResult, error)
	// CancelSwitchover withdraws a pending switchover.
	CancelSwitchover(ctx context.Context) error
	// Failover promotes candidate in a cluster without a healthy primary
	// (a manual failover), and returns once it serves or ctx ends.
	// allowDataLoss lifts the rules that protect acknowledged commits.
	Failover(ctx context.Context, candidate int, allowDataLoss bool) (SwitchoverResult, error)
	// SetReplication re-attaches (attached) or detaches a replica from
	// streaming, and returns once the node acted or ctx ends.
	SetReplication(ctx context.Context, node int, attached bool) error
	// AddNode joins the daemon at address:port to the mesh and adds node
	// id to the cluster (learner, then voter as the cap allows); it
	// returns once the node is a member or ctx ends.
	AddNode(ctx context.Context, id int, address string, port int) (NodeMembership, error)
	// RemoveNode removes a stopped node from the cluster and the mesh.
	RemoveNode(ctx context.Context, id int) error
	// SetMaintenance turns automatic failover off (on) or back on.
	SetMaintenance(ctx context.Context, on bool) error
	// History is every change of primary, oldest first.
	History() []HistoryEntry
}

// OpError is an Operator refusal: Status is the HTTP status to answer
// with (409 conflict, 412 precondition, 404 unknown node, 503 no quorum),
// Message says why.
type OpError struct {
	Status  int
	Message string
}

func (e *OpError) Error() string { return e.Message }

// SwitchoverResult describes a finished switchover.
type SwitchoverResult struct {
	OldPrimary   int    `json:"old_primary"`
	NewPrimary   int    `json:"new_primary,omitempty"`
	FencingToken uint64 `json:"fencing_token,omitempty"`
	TookMs       int64  `json:"took_ms,omitempty"`
	// ScheduledAt is set (RFC 3339) when the switchover was only
	// scheduled.
	ScheduledAt string `json:"scheduled_at,omitempty"`
}

// HistoryEntry is one change of primary.
type HistoryEntry struct {
	FencingToken uint64 `json:"fencing_token"`
	Old          int    `json:"old_primary"`
	New          int    `json:"new_primary"`
	Reason       string `json:"reason"`
	Timeline     uint32 `json:"timeline"`
	LSN          string `json:"lsn"`
	Time         string `json:"time"`
}

// switchoverTimeout bounds how long POST /cluster/switchover waits for
// the new primary.
const switchoverTimeout = 30 * time.Second

// maxSchedule bounds how far ahead a switchover may be scheduled.
const maxSchedule = 30 * 24 * time.Hour

// maxBody bounds request bodies: every one is a few fields.
const maxBody = 64 << 10

// methods registers an endpoint served by one handler per method.
func (s *server) methods(r *mux.Router, prefix, path string, hs map[string]http.HandlerFunc) {
	route := prefix + path
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		if hs[m] != nil || (m == http.MethodHead && hs[http.MethodGet] != nil) {
			allowed = append(allowed, m)
		}
	}
	allow := strings.Join(allowed, ", ")
	r.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		setRoute(w, route)
		h := hs[req.Method]
		if h == nil && req.Method == http.MethodHead {
			h = hs[http.MethodGet]
		}
		if h == nil {
			w.Header().Set("Allow", allow)
			s.writeError(w, req, http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: %s)", req.Method, route, allow)
			return
		}
		need := accessAdmin
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			need = accessRead
		}
		if s.allow(w, req, need, false) {
			h(w, req)
		}
	}))
}

// operator returns the Operator, or answers 501.
func (s *server) operator(w http.ResponseWriter, r *http.Request) (Operator, bool) {
	op, ok := s.src.(Operator)
	if !ok {
		s.writeError(w, r, http.StatusNotImplemented, "this node cannot carry out cluster operations")
	}
	return op, ok
}

// decodeBody parses a JSON body strictly into v: unknown fields, trailing
// data, wrong types and oversized bodies are 400s naming the problem. An
// empty body is allowed when emptyOK.
func (s *server) decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		// The middleware's cap on every mutating request's body.
		s.writeError(w, r, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxBody)
		return false
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, "reading the request body: %v", err)
		return false
	}
	if len(body) > maxBody {
		s.writeError(w, r, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxBody)
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if emptyOK {
			return true
		}
		s.writeError(w, r, http.StatusBadRequest, "a JSON body is required")
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "invalid JSON body: %s", describeJSONError(err))
		return false
	}
	if dec.More() {
		s.writeError(w, r, http.StatusBadRequest, "invalid JSON body: trailing data after the object")
		return false
	}
	return true
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// writeOpError answers an Operator error: its own status when it is an
// OpError, else 500 with the message (the daemon wraps every expected
// refusal in OpError).
func (s *server) writeOpError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *OpError
	if errors.As(err, &oe) {
		s.writeError(w, r, oe.Status, "%s", oe.Message)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.writeError(w, r, http.StatusGatewayTimeout, "not finished in time: %v", err)
		return
	}
	s.writeError(w, r, http.StatusInternalServerError, "%v", err)
}

type switchoverRequest struct {
	Candidate   *int    `json:"candidate"`
	ScheduledAt *string `json:"scheduled_at"`
}

func (s *server) handleSwitchover(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w, r)
	if !ok {
		return
	}
	var req switchoverRequest
	if !s.decodeBody(w, r, &req, true) {
		return
	}
	var at time.Time
	if req.ScheduledAt != nil {
		t, err := time.Parse(time.RFC3339, *req.ScheduledAt)
		switch {
		case err != nil:
			s.writeError(w, r, http.StatusBadRequest, "scheduled_at: %q is not an RFC 3339 time (e.g. 2026-11-26T03:00:00Z)", *req.ScheduledAt)
			return
		case !t.After(s.now()):
			s.writeError(w, r, http.StatusBadRequest, "scheduled_at: %s is not in the future; omit it to switch over now", *req.ScheduledAt)
			return
		case t.After(s.now().Add(maxSchedule)):
			s.writeError(w, r, http.StatusBadRequest, "scheduled_at: %s is more than %s ahead", *req.ScheduledAt, maxSchedule)
			return
		}
		at = t
	}
	cand := 0
	if req.Candidate != nil {
		if *req.Candidate <= 0 {
			s.writeError(w, r, http.StatusBadRequest, "candidate: %d is not a node id (a positive integer)", *req.Candidate)
			return
		}
		cand = *req.Candidate
	}
	// The server's WriteTimeout is shorter than a switchover may take.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(switchoverTimeout + 5*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), switchoverTimeout)
	defer cancel()
	res, err := op.Switchover(ctx, cand, at)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	if res.ScheduledAt != "" {
		s.writeEnvelope(w, r, http.StatusAccepted, res, fmt.Sprintf("switchover from node %d scheduled at %s", res.OldPrimary, res.ScheduledAt))
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, res, fmt.Sprintf("switched over from node %d to node %d in %d ms", res.OldPrimary, res.NewPrimary, res.TookMs))
}

func (s *server) handleCancelSwitchover(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w, r)
	if !ok {
		return
	}
	if err := op.CancelSwitchover(r.Context()); err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, nil, "switchover cancelled")
}

type failoverRequest struct {
	Candidate     *int `json:"candidate"`
	AllowDataLoss bool `json:"allow_data_loss"`
}

func (s *server) handleFailover(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w, r)
	if !ok {
		return
	}
	var req failoverRequest
	if !s.decodeBody(w, r, &req, false) {
		return
	}
	switch {
	case req.Candidate == nil:
		s.writeError(w, r, http.StatusBadRequest, `"candidate" (the node id to promote) is required`)
		return
	case *req.Candidate <= 0:
		s.writeError(w, r, http.StatusBadRequest, "candidate: %d is not a node id (a positive integer)", *req.Candidate)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(switchoverTimeout + 5*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), switchoverTimeout)
	defer cancel()
	res, err := op.Failover(ctx, *req.Candidate, req.AllowDataLoss)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, res, fmt.Sprintf("failed over from node %d to node %d in %d ms", res.OldPrimary, res.NewPrimary, res.TookMs))
}

// NodeMembership is a node's place in the cluster after add-node.
type NodeMembership struct {
	NodeID int    `json:"node_id"`
	Role   string `json:"membership"` // "voter" or "learner"
}

type addNodeRequest struct {
	NodeID   *int   `json:"node_id"`
	Hostname string `json:"hostname"`
	Address  string `json:"address"`
	Port     int    `json:"port"`
}

func (s *server) handleAddNode(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w, r)
	if !ok {
		return
	}
	var req addNodeRequest
	if !s.decodeBody(w, r, &req, false) {
		return
	}
	addr := req.Address
	if addr == "" {
		addr = req.Hostname
	}
	switch {
	case req.NodeID == nil || *req.NodeID <= 0:
		s.writeError(w, r, http.StatusBadRequest, `"node_id" (a positive integer) is required`)
		return
	case addr == "" || strings.ContainsAny(addr, " /\t\n:"):
		s.writeError(w, r, http.StatusBadRequest, `"address" (or "hostname"): the node's gossip host, without a port, is required`)
		return
	case req.Port < 1 || req.Port > 65535:
		s.writeError(w, r, http.StatusBadRequest, `"port": the node's gossip port (1-65535) is required, got %d`, req.Port)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), switchoverTimeout)
	defer cancel()
	m, err := op.AddNode(ctx, *req.NodeID, addr, req.Port)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, m, fmt.Sprintf("node %d added as a %s", m.NodeID, m.Role))
}

func (s *server) handleRemoveNode(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w, r)
	if !ok {
		return
	}
	var id int
	if v, ok := mux.Vars(r)["id"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			s.writeError(w, r, http.StatusBadRequest, "node id %q is not a positive integer", v)
			return
		}
		id = n
	} else {
		var req nodeBody
		if !s.decodeBody(w, r, &req, false) {
			return
		}
		if req.NodeID == nil || *req.NodeID <= 0 {
			s.writeError(w, r, http.StatusBadRequest, `"node_id" (a positive integer) is required`)
			return
		}
		id = *req.NodeID
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	if err := op.RemoveNode(ctx, id); err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, map[string]int{"node_id": id}, fmt.Sprintf("node %d removed from the cluster and the mesh", id))
}

type nodeBody struct {
	NodeID *int `json:"node_id"`
}

// handleReplication serves POST /replication/start (attach) and /stop.
func (s *server) handleReplication(attach bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op, ok := s.operator(w, r)
		if !ok {
			return
		}
		var req nodeBody
		if !s.decodeBody(w, r, &req, false) {
			return
		}
		switch {
		case req.NodeID == nil:
			s.writeError(w, r, http.StatusBadRequest, `"node_id" is required`)
			return
		case *req.NodeID <= 0:
			s.writeError(w, r, http.StatusBadRequest, "node_id: %d is not a node id (a positive integer)", *req.NodeID)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		defer cancel()
		if err := op.SetReplication(ctx, *req.NodeID, attach); err != nil {
			s.writeOpError(w, r, err)
			return
		}
		msg := fmt.Sprintf("node %d detached: streaming stopped; it is no failover candidate nor synchronous standby until started again", *req.NodeID)
		if attach {
			msg = fmt.Sprintf("node %d attached: streaming from the primary again", *req.NodeID)
		}
		s.writeEnvelope(w, r, http.StatusOK, map[string]any{"node_id": *req.NodeID, "detached": !attach}, msg)
	}
}

type maintenanceBody struct {
	Enabled *bool `json:"enabled"`
}

func (s *server) handleGetMaintenance(w http.ResponseWriter, r *http.Request) {
	on := false
	if es, ok := s.src.(ElectionSource); ok {
		on = es.Election().Maintenance
	}
	s.writeEnvelope(w, r, http.StatusOK, map[string]bool{"enabled": on}, "")
}

func (s *server) handleSetMaintenance(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w, r)
	if !ok {
		return
	}
	var req maintenanceBody
	if !s.decodeBody(w, r, &req, false) {
		return
	}
	if req.Enabled == nil {
		s.writeError(w, r, http.StatusBadRequest, `"enabled" (true or false) is required`)
		return
	}
	if err := op.SetMaintenance(r.Context(), *req.Enabled); err != nil {
		s.writeOpError(w, r, err)
		return
	}
	msg := "maintenance mode off: automatic failover is on"
	if *req.Enabled {
		msg = "maintenance mode on: no automatic failover until it is turned off"
	}
	s.writeEnvelope(w, r, http.StatusOK, map[string]bool{"enabled": *req.Enabled}, msg)
}

func (s *server) handleHistory(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w, r)
	if !ok {
		return
	}
	h := op.History()
	if h == nil {
		h = []HistoryEntry{}
	}
	s.writeEnvelope(w, r, http.StatusOK, h, "")
}
