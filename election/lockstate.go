package election

import (
	"fmt"
	"slices"
)

// ApplyLocked applies a command to the state the pglock backend keeps in
// its coordination database. It is Apply, with membership handled the
// way raft's configuration changes handle it in the quorum backend (there
// is no raft here): an added node becomes a voter while there are fewer
// than MaxVoters, else a learner; a removed node is tombstoned in
// Removed. Voters mean nothing for the lease in this backend (the
// coordination database grants it); they are the members the coordinator
// asks for positions.
func ApplyLocked(s *ClusterState, c Command) error {
	if c.Version == 0 {
		c.Version = CommandVersion // as Encode: commands here are never encoded
	}
	switch c.Type {
	case CmdAddVoter, CmdRemoveVoter:
		if err := c.validate(); err != nil {
			return err
		}
		id := c.Voter.ID
		voters := slices.DeleteFunc(slices.Clone(s.Voters), func(x uint64) bool { return x == id })
		learners := slices.DeleteFunc(slices.Clone(s.Learners), func(x uint64) bool { return x == id })
		removed := slices.DeleteFunc(slices.Clone(s.Removed), func(x uint64) bool { return x == id })
		if c.Type == CmdAddVoter {
			switch {
			case s.IsVoter(id) || len(voters) < MaxVoters:
				voters = append(voters, id)
			default:
				learners = append(learners, id)
			}
		} else {
			if id == s.Primary {
				return fmt.Errorf("%w: node %d is the primary; switch over first", ErrRejected, id)
			}
			removed = append(removed, id)
		}
		s.Voters, s.Learners, s.Removed = sortedUnique(voters), sortedUnique(learners), sortedUnique(removed)
		if len(s.Learners) == 0 {
			s.Learners = nil
		}
		if len(s.Removed) == 0 {
			s.Removed = nil
		}
		return nil
	}
	return s.Apply(c)
}
