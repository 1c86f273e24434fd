package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/ramd/ramd/internal/apiclient"
)

// keyring is one node's GET /api/v1/keys answer.
type keyring struct {
	NodeID    int    `json:"node_id"`
	Name      string `json:"name"`
	Encrypted bool   `json:"encrypted"`
	Keys      []struct {
		Fingerprint string `json:"fingerprint"`
		Primary     bool   `json:"primary"`
	} `json:"keys"`
}

func (k keyring) has(fp string) (installed, primary bool) {
	for _, key := range k.Keys {
		if key.Fingerprint == fp {
			return true, key.Primary
		}
	}
	return false, false
}

// nodeResult is the outcome of a keys command on one node.
type nodeResult struct {
	NodeID  int      `json:"node_id"`
	Name    string   `json:"name"`
	URL     string   `json:"url"`
	Error   string   `json:"error,omitempty"`
	Keyring *keyring `json:"keyring,omitempty"`
}

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// fingerprint is mesh.KeyFingerprint (ramctl does not link the mesh).
func fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// keys runs `ramctl keys list|install|use|remove` on every member of the
// cluster in turn, as `consul keyring` does: a gossip key must be the
// same everywhere. It reports each node's outcome and fails when any node
// could not be reached or refused.
func keys(c *apiclient.Client, args []string, asJSON bool, stdin io.Reader, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("keys: list, install KEY, use KEY, or remove KEY (KEY: base64, '-' reads it from stdin; use and remove also take a fingerprint)")
	}
	sub, rest := args[0], args[1:]
	var key []byte
	fp := ""
	switch sub {
	case "list":
		if len(rest) != 0 {
			return fmt.Errorf("keys list: unexpected argument %q", rest[0])
		}
	case "install", "use", "remove":
		if len(rest) != 1 {
			return fmt.Errorf("keys %s: exactly one KEY is required", sub)
		}
		arg := rest[0]
		if arg == "-" {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("keys %s: reading the key from stdin: %w", sub, err)
			}
			arg = strings.TrimSpace(line)
		}
		if sub != "install" && fingerprintRE.MatchString(arg) {
			fp = arg
			break
		}
		k, err := base64.StdEncoding.DecodeString(arg)
		if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
			return fmt.Errorf("keys %s: KEY must be a base64 key of 16, 24 or 32 bytes (ramd keygen prints one)", sub)
		}
		key, fp = k, fingerprint(k)
	default:
		return fmt.Errorf("keys: unknown subcommand %q (list, install, use, remove)", sub)
	}

	nodes, err := members(c)
	if err != nil {
		return err
	}
	// A change is checked on every node before anything changes: a node
	// made to encrypt with a key another node lacks, or a key removed
	// while another node still encrypts with it, cuts the two apart, and
	// a node left out of a rotation is cut off at its end.
	results := make([]nodeResult, len(nodes))
	rings := make([]keyring, len(nodes))
	for i, n := range nodes {
		results[i] = nodeResult{NodeID: n.NodeID, Name: n.Name, URL: n.APIURL}
		rings[i], err = nodeKeys(c, n)
		if err != nil {
			results[i].Error = err.Error()
		} else {
			results[i].Keyring = &rings[i]
		}
	}
	if sub != "list" {
		var problems []string
		for i, r := range results {
			switch installed, primary := rings[i].has(fp); {
			case r.Error != "":
				problems = append(problems, fmt.Sprintf("%s (node %d) is unreachable: %s", r.Name, r.NodeID, r.Error))
			case !rings[i].Encrypted:
				problems = append(problems, fmt.Sprintf("%s (node %d) does not encrypt gossip", r.Name, r.NodeID))
			case sub == "use" && !installed:
				problems = append(problems, fmt.Sprintf("%s (node %d) has not installed key %s: run keys install first", r.Name, r.NodeID, fp))
			case sub == "remove" && primary:
				problems = append(problems, fmt.Sprintf("%s (node %d) encrypts with key %s: make another key primary everywhere first (keys use)", r.Name, r.NodeID, fp))
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("keys %s: nothing changed: %s", sub, strings.Join(problems, "; "))
		}
		for i, n := range nodes {
			results[i].Keyring, results[i].Error = nil, ""
			var r apiclient.Response
			var err error
			one := apiclient.Client{URLs: []string{n.APIURL}, Token: c.Token, Timeout: c.Timeout, HTTP: c.HTTP}
			switch sub {
			case "install":
				r, err = call(&one, http.MethodPost, "/api/v1/keys", map[string]string{"key": base64.StdEncoding.EncodeToString(key)})
			case "use":
				r, err = call(&one, http.MethodPost, "/api/v1/keys/"+fp+"/use", nil)
			case "remove":
				r, err = call(&one, http.MethodDelete, "/api/v1/keys/"+fp, nil)
			}
			var k keyring
			if err == nil {
				err = r.Decode(&k)
			}
			if err != nil {
				results[i].Error = err.Error()
			} else {
				results[i].Keyring = &k
			}
		}
	}

	failed := 0
	for _, r := range results {
		if r.Error != "" {
			failed++
		}
	}
	if asJSON {
		b, _ := json.MarshalIndent(results, "", "  ")
		fmt.Fprintln(out, string(b))
	} else {
		for _, r := range results {
			switch {
			case r.Error != "":
				fmt.Fprintf(out, "%-12s node %-3d FAILED: %s\n", r.Name, r.NodeID, r.Error)
			case !r.Keyring.Encrypted:
				fmt.Fprintf(out, "%-12s node %-3d gossip not encrypted\n", r.Name, r.NodeID)
			default:
				var ks []string
				for _, k := range r.Keyring.Keys {
					s := k.Fingerprint
					if k.Primary {
						s += " (primary)"
					}
					ks = append(ks, s)
				}
				fmt.Fprintf(out, "%-12s node %-3d %s\n", r.Name, r.NodeID, strings.Join(ks, ", "))
			}
		}
	}
	if failed > 0 {
		what := "could not be read"
		if sub != "list" {
			what = "did not apply the change; run the same command again once they answer (it is idempotent on the nodes that did)"
		}
		return fmt.Errorf("keys %s: %d of %d nodes %s", sub, failed, len(results), what)
	}
	return nil
}

// members lists the cluster's members that have not left, from any node.
func members(c *apiclient.Client) ([]apiclient.StatusNode, error) {
	r, err := c.Get(context.Background(), "/api/v1/cluster/status")
	if err != nil {
		return nil, err
	}
	var s apiclient.Status
	if err := r.Decode(&s); err != nil {
		return nil, err
	}
	var out []apiclient.StatusNode
	for _, n := range s.Nodes {
		if n.State == "left" {
			continue
		}
		if n.APIURL == "" {
			return nil, fmt.Errorf("keys: node %d has not published its API address", n.NodeID)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("keys: the cluster lists no member")
	}
	return out, nil
}

// nodeKeys asks one node for its keyring.
func nodeKeys(c *apiclient.Client, n apiclient.StatusNode) (keyring, error) {
	one := apiclient.Client{URLs: []string{n.APIURL}, Token: c.Token, Timeout: c.Timeout, HTTP: c.HTTP}
	var k keyring
	r, err := one.Get(context.Background(), "/api/v1/keys")
	if err == nil {
		if r.Status >= 400 {
			return k, fmt.Errorf("%s (HTTP %d)", r.Envelope.Message, r.Status)
		}
		err = r.Decode(&k)
	}
	return k, err
}
