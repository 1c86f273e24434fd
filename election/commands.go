package election

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CommandVersion is the version every command this code writes carries.
// A replica that reads a higher version refuses the entry (an error, not a
// guess), so a mixed-version cluster stops deciding rather than diverging.
const CommandVersion = 1

// CommandType tags a replicated command.
type CommandType string

const (
	CmdBootstrap      CommandType = "bootstrap"
	CmdPromote        CommandType = "promote"
	CmdSetMaintenance CommandType = "set-maintenance"
	CmdSwitchover     CommandType = "switchover"
	CmdFailover       CommandType = "failover"
	CmdSetDetached    CommandType = "set-detached"
	CmdSetConfig      CommandType = "set-config"
	CmdSetSync        CommandType = "set-sync"
	CmdAddVoter       CommandType = "add-voter"
	CmdRemoveVoter    CommandType = "remove-voter"
)

// ErrMalformedCommand is wrapped by every decoding failure.
var ErrMalformedCommand = errors.New("election: malformed command")

// Command is one replicated change of ClusterState. Exactly the payload
// that matches Type is set. It is encoded as JSON so an operator can read
// the raft log with ordinary tools.
type Command struct {
	Type    CommandType `json:"type"`
	Version int         `json:"v"`

	Bootstrap   *BootstrapCmd   `json:"bootstrap,omitempty"`
	Promote     *PromoteCmd     `json:"promote,omitempty"`
	Maintenance *MaintenanceCmd `json:"maintenance,omitempty"`
	Switchover  *SwitchoverCmd  `json:"switchover,omitempty"`
	Failover    *FailoverCmd    `json:"failover,omitempty"`
	Detached    *DetachedCmd    `json:"detached,omitempty"`
	Config      *ConfigCmd      `json:"config,omitempty"`
	Voter       *VoterCmd       `json:"voter,omitempty"`
	Sync        *SyncState      `json:"sync,omitempty"`
}

// BootstrapCmd names the cluster's first primary (token 1).
type BootstrapCmd struct {
	Primary uint64        `json:"primary"`
	Voters  []uint64      `json:"voters"`
	At      time.Duration `json:"at"`
	// Time is the proposer's wall clock (Unix ms; 0: not given).
	Time int64 `json:"time,omitempty"`
	// Sync is the cluster's initial synchronous replication setup
	// (Config.Sync of the proposer); nil: asynchronous.
	Sync *SyncState `json:"sync,omitempty"`
}

// PromoteCmd hands the primary role to New. Token must be exactly the
// applied token + 1; anything else was proposed from a stale view and is
// rejected at apply time on every replica alike.
type PromoteCmd struct {
	Token  uint64 `json:"token"`
	New    uint64 `json:"new"`
	Old    uint64 `json:"old"`
	Reason string `json:"reason"`
	// Timeline and LSN are the chosen candidate's reported position.
	Timeline uint32 `json:"timeline"`
	LSN      uint64 `json:"lsn"`
	// At is the proposer's logical time, recorded in the history. It is
	// carried in the command because apply must not read any clock. It is
	// only meaningful on the proposer (every node's logical clock starts
	// elsewhere); Time is the comparable one.
	At time.Duration `json:"at"`
	// Time is the proposer's wall clock in Unix milliseconds, as the
	// daemon last gave it (Node.SetWallNow); 0 when never given.
	Time int64 `json:"time,omitempty"`
	// Reclaim: New is the old primary itself, back with its data
	// directory intact, promoted again under the next token (Choose's
	// reclaim rule). Without it, naming the current primary is refused
	// as a stale or duplicated promotion.
	Reclaim bool `json:"reclaim,omitempty"`
}

// MaintenanceCmd turns automatic failover off (On) or back on.
type MaintenanceCmd struct {
	On bool `json:"on"`
}

// FailoverCmd is an operator's manual failover (or, with Clear, its
// withdrawal): the coordinator fails Token over to To even if the
// detector has not judged the primary failed, and even in maintenance
// mode. The lease rules still hold: the old lease is revoked and waited
// out before anyone is promoted. AllowDataLoss lifts the synchronous bar
// and the lag limit: To is promoted even if it may lack acknowledged
// commits.
type FailoverCmd struct {
	Clear         bool          `json:"clear,omitempty"`
	Token         uint64        `json:"token,omitempty"`
	To            uint64        `json:"to,omitempty"`
	AllowDataLoss bool          `json:"allow_data_loss,omitempty"`
	At            time.Duration `json:"at"`
}

// ConfigCmd changes the cluster-wide configuration overrides: Set adds or
// replaces keys, Unset removes them (back to each node's own file). The
// keys and values are validated by the proposer (configs.WithOverrides);
// here they only need to be well-formed.
type ConfigCmd struct {
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
}

// DetachedCmd detaches a replica from streaming (On) or re-attaches it.
// A detached replica is never a failover candidate nor a synchronous
// standby.
type DetachedCmd struct {
	Node uint64 `json:"node"`
	On   bool   `json:"on"`
}

// SwitchoverCmd requests (or, with Clear, cancels) a planned switchover.
type SwitchoverCmd struct {
	Clear bool   `json:"clear,omitempty"`
	From  uint64 `json:"from,omitempty"`
	// To is the requested target; 0 lets the coordinator choose.
	To uint64        `json:"to,omitempty"`
	At time.Duration `json:"at"`
	// ScheduledAt (Unix ms, wall clock; 0: now) is when the primary steps
	// down. It is judged by the primary's own wall clock.
	ScheduledAt int64 `json:"scheduled_at,omitempty"`
}

// VoterCmd is the context of a raft ConfChange adding or removing a voter.
type VoterCmd struct {
	ID uint64 `json:"id"`
}

// Encode returns the command's wire form.
func (c Command) Encode() ([]byte, error) {
	if c.Version == 0 {
		c.Version = CommandVersion
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// DecodeCommand parses and validates an entry's data. It never panics; any
// defect is an error wrapping ErrMalformedCommand.
func DecodeCommand(data []byte) (Command, error) {
	var c Command
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Command{}, fmt.Errorf("%w: %w", ErrMalformedCommand, err)
	}
	if dec.More() {
		return Command{}, fmt.Errorf("%w: trailing data", ErrMalformedCommand)
	}
	if err := c.validate(); err != nil {
		return Command{}, err
	}
	return c, nil
}

func (c Command) validate() error {
	if c.Version != CommandVersion {
		return fmt.Errorf("%w: unsupported version %d", ErrMalformedCommand, c.Version)
	}
	set := 0
	for _, p := range []bool{c.Bootstrap != nil, c.Promote != nil, c.Maintenance != nil, c.Switchover != nil, c.Voter != nil, c.Sync != nil, c.Failover != nil, c.Detached != nil, c.Config != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%w: %q must carry exactly one payload, has %d", ErrMalformedCommand, c.Type, set)
	}
	var ok bool
	switch c.Type {
	case CmdBootstrap:
		ok = c.Bootstrap != nil && c.Bootstrap.Primary != 0 && (c.Bootstrap.Sync == nil || c.Bootstrap.Sync.validate() == nil)
	case CmdPromote:
		ok = c.Promote != nil && c.Promote.New != 0 && c.Promote.Token != 0
	case CmdSetMaintenance:
		ok = c.Maintenance != nil
	case CmdSwitchover:
		ok = c.Switchover != nil
	case CmdSetDetached:
		ok = c.Detached != nil && c.Detached.Node != 0
	case CmdSetConfig:
		ok = c.Config != nil && len(c.Config.Set)+len(c.Config.Unset) > 0
		if ok {
			for k := range c.Config.Set {
				ok = ok && k != ""
			}
			for _, k := range c.Config.Unset {
				ok = ok && k != ""
			}
		}
	case CmdFailover:
		ok = c.Failover != nil && (c.Failover.Clear || (c.Failover.To != 0 && c.Failover.Token != 0))
	case CmdSetSync:
		ok = c.Sync != nil && c.Sync.validate() == nil
	case CmdAddVoter, CmdRemoveVoter:
		ok = c.Voter != nil && c.Voter.ID != 0
	default:
		return fmt.Errorf("%w: unknown type %q", ErrMalformedCommand, c.Type)
	}
	if !ok {
		return fmt.Errorf("%w: %q has a missing or invalid payload", ErrMalformedCommand, c.Type)
	}
	return nil
}
