package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fakeBackups records the backup calls.
type fakeBackups struct {
	*fakeSource
	name         string
	node, target int
	source       int
	err          error
}

func (f *fakeBackups) CreateBackup(_ context.Context, name string, node int) (BackupInfo, error) {
	f.name, f.node = name, node
	if f.err != nil {
		return BackupInfo{}, f.err
	}
	return BackupInfo{Name: name, NodeID: max(node, 1), Status: "running"}, nil
}

func (f *fakeBackups) ListBackups(context.Context) BackupList {
	return BackupList{Backups: []BackupInfo{{Name: "b1", NodeID: 2, Status: "done", Verified: true}},
		Unreachable: []UnreachableNode{{NodeID: 3, Error: "timeout"}}}
}

func (f *fakeBackups) LocalBackups() []BackupInfo { return nil }

func (f *fakeBackups) GetBackup(_ context.Context, name string, node int) (BackupInfo, error) {
	f.name, f.node = name, node
	return BackupInfo{Name: name, NodeID: 2}, f.err
}

func (f *fakeBackups) DeleteBackup(_ context.Context, name string, node int) (BackupInfo, error) {
	f.name, f.node = name, node
	return BackupInfo{Name: name, NodeID: 2}, f.err
}

func (f *fakeBackups) RestoreBackup(_ context.Context, name string, target, source int) (RestoreInfo, error) {
	f.name, f.target, f.source = name, target, source
	if f.err != nil {
		return RestoreInfo{}, f.err
	}
	return RestoreInfo{BackupName: name, TargetNode: target, HolderNode: 2, Status: "running"}, nil
}

func (f *fakeBackups) RestoreStatus(_ context.Context, node int) (RestoreInfo, error) {
	f.node = node
	return RestoreInfo{TargetNode: node, Status: "done"}, f.err
}

func (f *fakeBackups) SendBackup(_ context.Context, name string, start func(), w io.Writer) error {
	f.name = name
	if f.err != nil {
		return f.err
	}
	start()
	_, err := w.Write([]byte("tar"))
	return err
}

func withBackups(b *fakeBackups) apiOption {
	return func(c *Config, f *fakeSource) {
		b.fakeSource = f
		c.Source = b
		c.Auth = AuthConfig{AdminToken: testAdminToken, ReadToken: testReadToken, PublicHealthChecks: true}
	}
}

func TestValidBackupName(t *testing.T) {
	for _, ok := range []string{"a", "nightly-2026.01.02", "B_1", "0" + strings.Repeat("x", 62)} {
		if err := ValidBackupName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "..", "a..b", ".hidden", "-x", "a b", "é", "list", "create", "restore", strings.Repeat("x", 64)} {
		if err := ValidBackupName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBackupEndpoints(t *testing.T) {
	b := &fakeBackups{}
	a := newTestAPI(t, 1, primaryHealth(), withBackups(b))
	for _, c := range []struct {
		method, target, body string
		code                 int
		want                 string
	}{
		{"POST", "/api/v1/backup/create", `{"backup_name": "b1"}`, 202, "backup b1 started on node 1"},
		{"POST", "/api/v1/backup/create", `{"backup_name": "b1", "node_id": 2}`, 202, "started on node 2"},
		{"POST", "/api/v1/backup/create", `{"backup_name": "a/b"}`, 400, "must not contain"},
		{"POST", "/api/v1/backup/create", `{"backup_name": "a..b"}`, 400, "must not contain"},
		{"POST", "/api/v1/backup/create", `{"backup_name": "b1", "node_id": 0}`, 400, "not a node id"},
		{"POST", "/api/v1/backup/create", `{"backup_name": "b1", "node_id": "2"}`, 400, `field "node_id" must be int`},
		{"POST", "/api/v1/backup/create", `{"name": "b1"}`, 400, `unknown field "name"`},
		{"POST", "/api/v1/backup/create", `{}`, 400, `"backup_name" is required`},
		{"POST", "/api/v1/backup/create", ``, 400, "a JSON body is required"},
		{"GET", "/api/v1/backup/create", ``, 405, "not allowed"},
		{"GET", "/api/v1/backup/list", ``, 200, "1 node(s) did not answer"},
		{"GET", "/api/v1/backup/list?scope=local", ``, 200, ""},
		{"GET", "/api/v1/backup/list?scope=nope", ``, 400, "scope"},
		{"GET", "/api/v1/backup/list?x=1", ``, 400, "unknown query parameter"},
		{"GET", "/api/v1/backup/b1", ``, 200, ""},
		{"GET", "/api/v1/backup/b1?node_id=x", ``, 400, "not a node id"},
		{"GET", "/api/v1/backup/a..b", ``, 400, "must not contain"},
		{"GET", "/api/v1/backup/a%2Fb", ``, 400, "must not contain"},
		{"DELETE", "/api/v1/backup/b1?node_id=2", ``, 200, "backup b1 deleted from node 2"},
		{"DELETE", "/api/v1/backup/bad%20name", ``, 400, "backup name"},
		{"POST", "/api/v1/backup/restore", `{"backup_name": "b1", "target_node": 3}`, 202, "restoring backup b1 (from node 2) onto node 3"},
		{"POST", "/api/v1/backup/restore", `{"backup_name": "b1", "target_node": 3, "source_node": 2}`, 202, "onto node 3"},
		{"POST", "/api/v1/backup/restore", `{"backup_name": "b1"}`, 400, `"target_node"`},
		{"POST", "/api/v1/backup/restore", `{"target_node": 3}`, 400, `"backup_name" is required`},
		{"POST", "/api/v1/backup/restore", `{"backup_name": "../x", "target_node": 3}`, 400, "must not contain"},
		{"POST", "/api/v1/backup/restore", `{"backup_name": "b1", "target_node": -3}`, 400, "not a node id"},
		{"POST", "/api/v1/backup/restore", `{"backup_name": "b1", "target_node": 3, "source_node": 0}`, 400, "source_node"},
		{"GET", "/api/v1/backup/restore?node_id=3", ``, 200, ""},
	} {
		rec := a.send(c.method, c.target, c.body)
		env := envelopeOf(t, rec)
		if rec.Code != c.code || !strings.Contains(*env.Message, c.want) {
			t.Errorf("%s %s %s: %d %q, want %d containing %q", c.method, c.target, c.body, rec.Code, *env.Message, c.code, c.want)
		}
	}
	if b.name != "b1" || b.target != 3 || b.source != 2 {
		t.Errorf("restore reached the operator as %q target %d source %d", b.name, b.target, b.source)
	}

	// Refusals keep their status and say why.
	b.err = &OpError{Status: http.StatusNotFound, Message: "node 9 is not a member of the cluster"}
	if rec := a.send("POST", "/api/v1/backup/create", `{"backup_name": "b2", "node_id": 9}`); rec.Code != 404 || !strings.Contains(*envelopeOf(t, rec).Message, "node 9") {
		t.Errorf("unknown node: %d %s", rec.Code, rec.Body)
	}
	b.err = &OpError{Status: http.StatusConflict, Message: "node 1 is busy with backup b1"}
	if rec := a.send("POST", "/api/v1/backup/restore", `{"backup_name": "b1", "target_node": 1}`); rec.Code != 409 || !strings.Contains(*envelopeOf(t, rec).Message, "busy") {
		t.Errorf("busy: %d %s", rec.Code, rec.Body)
	}
	b.err = nil

	// Changes and downloads need the admin token; listing a read one.
	if rec := a.sendAs(testReadToken, "POST", "/api/v1/backup/create", `{"backup_name": "b3"}`); rec.Code != 403 {
		t.Errorf("create with the read token: %d", rec.Code)
	}
	if rec := a.sendAs(testReadToken, "GET", "/api/v1/backup/list", ``); rec.Code != 200 {
		t.Errorf("list with the read token: %d", rec.Code)
	}
	if rec := a.sendAs(testReadToken, "GET", "/api/v1/backup/b1/download", ``); rec.Code != 403 {
		t.Errorf("download with the read token: %d", rec.Code)
	}
	rec := a.send("GET", "/api/v1/backup/b1/download", ``)
	if rec.Code != 200 || rec.Body.String() != "tar" || rec.Header().Get("Content-Type") != "application/x-tar" {
		t.Errorf("download: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	b.err = &OpError{Status: http.StatusNotFound, Message: "node 1 holds no backup named zz"}
	if rec := a.send("GET", "/api/v1/backup/zz/download", ``); rec.Code != 404 {
		t.Errorf("download of a missing backup: %d", rec.Code)
	}
}

func TestBackupsWithoutOperator(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth(), func(c *Config, _ *fakeSource) { c.Auth.AdminToken = testAdminToken })
	if rec := a.send("POST", "/api/v1/backup/create", `{"backup_name": "b1"}`); rec.Code != 501 {
		t.Errorf("create without a backup operator: %d", rec.Code)
	}
}
