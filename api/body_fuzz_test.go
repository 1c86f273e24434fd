package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// fuzzBody sends arbitrary bodies to a mutating endpoint through the whole
// handler (middleware, auth, decoder, handler) with the admin token and an
// operator that always succeeds: no body may cause a panic or a 500, and
// every answer is the JSON envelope with one of the expected statuses.
func fuzzBody(f *testing.F, method, target string, seeds []string, check func(t *testing.T, op *fakeOperator, code int)) {
	for _, s := range append(seeds, "", " ", "{", "}", "null", "[]", `""`, "0", `{}`, `{} {}`, `{}x`,
		`{"candidate":1e400}`, `{"candidate":-0}`, `{"candidate":"1"}`, `{"enabled":1}`, "\xff\xfe",
		`{"candidate":1,"candidate":2}`, `{"CANDIDATE":2}`, strings.Repeat(`[`, 10000), strings.Repeat(" ", maxBody+1)+"{}") {
		f.Add(s)
	}
	op := &fakeOperator{}
	a := newTestAPI(f, 1, primaryHealth(), withOperator(op), quiet())
	f.Fuzz(func(t *testing.T, body string) {
		op.candidate, op.maintenance, op.allowLoss = 0, nil, false
		rec := a.send(method, target, body)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusNotImplemented:
		default:
			t.Fatalf("%s %s %q: status %d: %s", method, target, body, rec.Code, rec.Body)
		}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || len(env) != 4 {
			t.Fatalf("%q: not an envelope (%v): %s", body, err, rec.Body)
		}
		check(t, op, rec.Code)
	})
}

func FuzzSwitchoverBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/v1/cluster/switchover",
		[]string{`{"candidate":2}`, `{"candidate":0}`, `{"candidate":null}`, `{"scheduled_at":"2030-01-01T00:00:00Z"}`, `{"candidate":2,"x":1}`},
		func(t *testing.T, op *fakeOperator, code int) {
			if code == http.StatusOK && op.candidate < 0 {
				t.Fatalf("operator called with candidate %d", op.candidate)
			}
		})
}

func FuzzFailoverBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/v1/cluster/failover",
		[]string{`{"candidate":2}`, `{"candidate":3,"allow_data_loss":true}`, `{"allow_data_loss":true}`, `{"candidate":0}`, `{"candidate":2,"allow_data_loss":"yes"}`},
		func(t *testing.T, op *fakeOperator, code int) {
			if code == http.StatusOK && op.candidate <= 0 {
				t.Fatalf("operator called with candidate %d", op.candidate)
			}
			if code == http.StatusNotImplemented {
				t.Fatal("501 from failover")
			}
		})
}

func FuzzMaintenanceBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/v1/cluster/maintenance",
		[]string{`{"enabled":true}`, `{"enabled":false}`, `{"enabled":null}`, `{"enabled":"true"}`},
		func(t *testing.T, op *fakeOperator, code int) {
			if (code == http.StatusOK) != (op.maintenance != nil) {
				t.Fatalf("status %d, operator called: %v", code, op.maintenance != nil)
			}
			if code == http.StatusNotImplemented {
				t.Fatal("501 from maintenance")
			}
		})
}
