package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// TestBackupRestore: a base backup taken by a named replica (asked
// through ramctl on another node's API) is listed as verified from any
// node; restored onto the other replica (which receives it from the
// holder over the API), that replica streams again and holds the
// backed-up rows and, after catching up, the later ones; its old data
// directory is kept aside. Bad names are 400s, unknown nodes 404s, and
// restoring over the primary is refused.
func TestBackupRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, primary := formedPrimary(t, ctx)
	var holder, target *cluster.Node
	for _, n := range c.Nodes {
		if n != primary {
			if holder == nil {
				holder = n
			} else {
				target = n
			}
		}
	}
	conn := connect(t, ctx, primary)
	if _, err := conn.Exec(ctx, "CREATE TABLE e2e_backup (id int PRIMARY KEY); INSERT INTO e2e_backup SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	waitReplicasStreaming(t, c, primary)
	ramctl := func(url string, args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, ramctlBin, append([]string{"--url", url, "--token", c.Token}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}

	// Refusals: a bad name, an unknown node, a malformed body.
	for body, want := range map[string]int{
		`{"backup_name": "../etc"}`:               400,
		`{"backup_name": "a/b"}`:                  400,
		`{"backup_name": "ok", "node_id": 99}`:    404,
		`{"backup_name": "ok", "node_id": "two"}`: 400,
		`{"backup_name": "ok", "bogus": true}`:    400,
		`{"backup_name": "ok", "node_id": -1}`:    400,
	} {
		if code, env := apiCall(t, c.Token, "POST", target.APIURL()+"/api/v1/backup/create", body); code != want || !strings.Contains(env, `"message":"`) {
			t.Errorf("create %s: %d %s, want %d", body, code, env, want)
		}
	}

	began := time.Now()
	out, err := ramctl(target.APIURL(), "backup", "create", "nightly", "--node", fmt.Sprint(holder.ID))
	if err != nil {
		t.Fatalf("ramctl backup create: %v\n%s", err, out)
	}
	t.Logf("ramctl backup create (%.1f s):\n%s", time.Since(began).Seconds(), out)
	if !strings.Contains(out, "done on node "+fmt.Sprint(holder.ID)) || !strings.Contains(out, "100%") {
		t.Errorf("ramctl output: %s", out)
	}
	// A second backup of the same name on the same node is a conflict.
	if code, env := apiCall(t, c.Token, "POST", primary.APIURL()+"/api/v1/backup/create", fmt.Sprintf(`{"backup_name": "nightly", "node_id": %d}`, holder.ID)); code != 409 {
		t.Errorf("duplicate name: %d %s", code, env)
	}

	// Listed, verified, from the primary's API.
	code, env := apiCall(t, c.Token, "GET", primary.APIURL()+"/api/v1/backup/list", "")
	var list struct {
		Data struct {
			Backups []struct {
				Name     string `json:"name"`
				NodeID   int    `json:"node_id"`
				Status   string `json:"status"`
				Verified bool   `json:"verified"`
				EndLSN   string `json:"end_lsn"`
				Timeline int    `json:"timeline"`
				Size     int64  `json:"size_bytes"`
			} `json:"backups"`
			Unreachable []any `json:"unreachable"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(env), &list); code != 200 || err != nil {
		t.Fatalf("list: %d %s %v", code, env, err)
	}
	if len(list.Data.Backups) != 1 || len(list.Data.Unreachable) != 0 {
		t.Fatalf("list: %s", env)
	}
	b := list.Data.Backups[0]
	if b.Name != "nightly" || b.NodeID != holder.ID || b.Status != "done" || !b.Verified || b.EndLSN == "" || b.Timeline != 1 || b.Size < 1<<20 {
		t.Fatalf("listed backup: %+v", b)
	}
	if out, err := ramctl(holder.APIURL(), "backup", "list"); err != nil || !strings.Contains(out, "nightly") {
		t.Errorf("ramctl backup list: %v\n%s", err, out)
	}

	if _, err := conn.Exec(ctx, "INSERT INTO e2e_backup SELECT generate_series(1001, 1500)"); err != nil {
		t.Fatal(err)
	}
	// Restoring over the primary is refused.
	if code, env := apiCall(t, c.Token, "POST", holder.APIURL()+"/api/v1/backup/restore", fmt.Sprintf(`{"backup_name": "nightly", "target_node": %d}`, primary.ID)); code != 409 || !strings.Contains(env, "primary") {
		t.Errorf("restore over the primary: %d %s", code, env)
	}
	if code, env := apiCall(t, c.Token, "POST", holder.APIURL()+"/api/v1/backup/restore", `{"backup_name": "nope", "target_node": 99}`); code != 404 {
		t.Errorf("restore onto an unknown node: %d %s", code, env)
	}

	began = time.Now()
	out, err = ramctl(primary.APIURL(), "backup", "restore", "nightly", "--target", fmt.Sprint(target.ID), "--force")
	if err != nil {
		t.Fatalf("ramctl backup restore: %v\n%s", err, out)
	}
	t.Logf("ramctl backup restore (%.1f s):\n%s", time.Since(began).Seconds(), out)
	aside, _ := filepath.Glob(target.DataDir + ".before-restore-*")
	if len(aside) != 1 {
		t.Errorf("old data directory not moved aside: %v", aside)
	} else if _, err := filepath.Glob(filepath.Join(aside[0], "PG_VERSION")); err != nil {
		t.Error(err)
	}
	waitReplicasStreaming(t, c, primary)
	if _, err := conn.Exec(ctx, "INSERT INTO e2e_backup SELECT generate_series(1501, 1600)"); err != nil {
		t.Fatal(err)
	}
	tconn := connect(t, ctx, target)
	eventually(t, 20*time.Second, func() string {
		var n, maxID int
		if err := tconn.QueryRow(ctx, "SELECT count(*), max(id) FROM e2e_backup").Scan(&n, &maxID); err != nil {
			return err.Error()
		}
		if n != 1600 || maxID != 1600 {
			return fmt.Sprintf("restored replica holds %d rows (max %d), want 1600", n, maxID)
		}
		return ""
	})

	// Deleting through any node removes it from its holder.
	if out, err := ramctl(target.APIURL(), "backup", "delete", "nightly", "--force"); err != nil {
		t.Errorf("ramctl backup delete: %v\n%s", err, out)
	}
	if code, env := apiCall(t, c.Token, "GET", primary.APIURL()+"/api/v1/backup/nightly", ""); code != 404 {
		t.Errorf("deleted backup: %d %s", code, env)
	}
}
