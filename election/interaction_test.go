package election

import (
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestInteraction runs the scenarios in testdata/*.txt. Commands:
//
//	add-nodes <n>              n founding voters 1..n
//	elect <id>                 make id the raft leader
//	bootstrap <primary>        leader proposes the first primary
//	local <id> lsn=<n> [tl=] [healthy=] [priority=] [nofailover]
//	tick [<k>]                 k ticks of 100ms, delivering in between
//	fail [reason]              the coordinator's detector reports the primary failed
//	release <id>               id releases its lease (graceful stop)
//	maintenance <on|off>
//	sync <off|quorum|strict> [k=<n>]   leader proposes ClusterState.Sync (every standby)
//	isolate <id> / heal        cut a node off / restore the network
//	crash <id> / restart <id>  restart restores only what Ready asked to persist
//	sent <id>                  non-raft messages id sent since the last sent
//	status
//
// Output lists every Action and Event with its logical time and node.
func TestInteraction(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var h *harness
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			id := func(i int) uint64 {
				v, err := strconv.ParseUint(d.CmdArgs[i].Key, 10, 64)
				if err != nil {
					t.Fatalf("%s: bad node id: %v", d.Pos, err)
				}
				return v
			}
			if h != nil {
				h.t = t
				h.out.Reset()
			}
			switch d.Cmd {
			case "add-nodes":
				h = newHarness(t, testConfig(), int(id(0)))
				h.stabilize()
			case "elect":
				h.elect(id(0))
			case "bootstrap":
				if err := h.leader().ProposeBootstrap(id(0)); err != nil {
					return err.Error()
				}
				h.stabilize()
			case "local":
				l := Local{Healthy: true, Position: Position{Timeline: 1}}
				var lsn, tl uint64
				d.MaybeScanArgs(t, "lsn", &lsn)
				if d.MaybeScanArgs(t, "tl", &tl) {
					l.Position.Timeline = uint32(tl)
				}
				l.Position.LSN = lsn
				d.MaybeScanArgs(t, "healthy", &l.Healthy)
				d.MaybeScanArgs(t, "priority", &l.Priority)
				l.NoFailover = d.HasArg("nofailover")
				l.FencedPrimary = d.HasArg("fenced")
				if l.FencedPrimary {
					// What the daemon reports for its stopped old primary.
					l.Healthy, l.Position = false, Position{}
				}
				h.nodes[id(0)].SetLocal(l)
			case "tick":
				k := 1
				if len(d.CmdArgs) > 0 {
					k = int(id(0))
				}
				h.tick(k)
			case "fail":
				reason := "detector: primary failed"
				if len(d.CmdArgs) > 0 {
					reason = d.CmdArgs[0].Key
				}
				h.leader().ReportPrimaryFailed(reason)
				h.stabilize()
			case "release":
				h.nodes[id(0)].Release("graceful stop")
				h.stabilize()
			case "switchover":
				var to uint64
				d.MaybeScanArgs(t, "to", &to)
				if err := h.leader().RequestSwitchover(to, 0); err != nil {
					return err.Error()
				}
				h.stabilize()
			case "step-down":
				// What the daemon does on ActStepDown: stop PostgreSQL
				// cleanly, then release with the final position.
				var lsn uint64
				d.ScanArgs(t, "lsn", &lsn)
				h.nodes[id(0)].ReleaseAfterStop("planned switchover", Position{Timeline: 1, LSN: lsn})
				h.stabilize()
			case "manual-failover":
				var to uint64
				d.ScanArgs(t, "to", &to)
				if err := h.leader().RequestFailover(to, d.HasArg("allow-data-loss")); err != nil {
					return err.Error()
				}
				h.stabilize()
			case "maintenance":
				if err := h.leader().SetMaintenance(d.CmdArgs[0].Key == "on"); err != nil {
					return err.Error()
				}
				h.stabilize()
			case "sync":
				s := SyncState{Mode: SyncMode(d.CmdArgs[0].Key)}
				if s.Mode == "off" {
					s.Mode = SyncOff
				}
				d.MaybeScanArgs(t, "k", &s.NumSync)
				if err := h.leader().SetSync(s); err != nil {
					return err.Error()
				}
				h.stabilize()
			case "observe-primary":
				// What the daemon feeds from the primary's gossiped state.
				var token, lsn uint64
				d.ScanArgs(t, "token", &token)
				d.ScanArgs(t, "lsn", &lsn)
				h.nodes[id(0)].ObservePrimary(token, Position{Timeline: 1, LSN: lsn, Token: token, TokenKnown: true})
			case "config":
				set := map[string]string{}
				for _, a := range d.CmdArgs {
					set[a.Key] = strings.Join(a.Vals, ",")
				}
				if err := h.leader().SetConfig(set, nil); err != nil {
					return err.Error()
				}
				h.stabilize()
			case "isolate":
				h.cut[id(0)] = true
			case "heal":
				clear(h.cut)
			case "crash":
				h.crash(id(0))
			case "restart":
				h.restart(id(0))
				h.stabilize()
			case "sent":
				return h.sentBy(id(0))
			case "status":
				return h.status()
			default:
				t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			}
			if h.out.Len() == 0 {
				return "ok"
			}
			return h.out.String()
		})
	})
}
