// Package apiclient is the small HTTP client ramd's own commands and
// ramctl use to talk to a node's REST API, and the human-readable
// rendering of its answers.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Envelope is the API's JSON envelope.
type Envelope struct {
	Success   bool            `json:"success"`
	Data      json.RawMessage `json:"data"`
	Message   string          `json:"message"`
	Timestamp string          `json:"timestamp"`
}

// Client asks one of several nodes, in turn, until one answers.
type Client struct {
	// URLs are API base URLs ("http://10.0.0.1:8080"); the first that
	// answers is used.
	URLs []string
	// Token is sent as a bearer token when set.
	Token string
	// Timeout bounds each request (default 5 s).
	Timeout time.Duration
	// HTTP is the transport (default http.DefaultClient).
	HTTP *http.Client
}

// ErrUnreachable wraps the failure to reach any of the URLs.
var ErrUnreachable = errors.New("apiclient: no node answered")

// Response is one answer.
type Response struct {
	URL      string
	Status   int
	Envelope Envelope
	Body     []byte
}

// Get fetches path from the first URL that answers.
func (c *Client) Get(ctx context.Context, path string) (Response, error) {
	return c.Do(ctx, http.MethodGet, path, nil)
}

// Do sends a request with body (JSON-encoded unless nil) to the first URL
// that answers. A node that answered (with any status) is not retried:
// the request may have been carried out.
func (c *Client) Do(ctx context.Context, method, path string, body any) (Response, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Response{}, fmt.Errorf("apiclient: encode request: %w", err)
		}
		payload = b
	}
	if len(c.URLs) == 0 {
		return Response{}, errors.New("apiclient: no API URL given")
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	var errs []string
	for _, base := range c.URLs {
		base = strings.TrimRight(base, "/")
		rctx, cancel := context.WithTimeout(ctx, timeout)
		r, err := c.do(rctx, hc, method, base, path, payload)
		cancel()
		if err == nil {
			return r, nil
		}
		var ue unreachable
		if !errors.As(err, &ue) {
			return r, err
		}
		errs = append(errs, ue.Error())
	}
	return Response{}, fmt.Errorf("%w: %s", ErrUnreachable, strings.Join(errs, "; "))
}

type unreachable struct{ err error }

func (u unreachable) Error() string { return u.err.Error() }

func (c *Client) do(ctx context.Context, hc *http.Client, method, base, path string, payload []byte) (Response, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return Response{}, fmt.Errorf("apiclient: bad URL %q: %w", base, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Response{}, unreachable{fmt.Errorf("%s: %v", base, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return Response{}, unreachable{fmt.Errorf("%s: read: %v", base, err)}
	}
	r := Response{URL: base, Status: resp.StatusCode, Body: body}
	if err := json.Unmarshal(body, &r.Envelope); err != nil {
		return r, fmt.Errorf("apiclient: %s%s answered %d with a body that is not ramd's JSON", base, path, resp.StatusCode)
	}
	return r, nil
}

// Decode unmarshals the envelope's data into out, or returns the API's
// message as the error when the request did not succeed.
func (r Response) Decode(out any) error {
	if !r.Envelope.Success && r.Envelope.Message != "" && len(r.Envelope.Data) == 0 {
		return errors.New(r.Envelope.Message)
	}
	if err := json.Unmarshal(r.Envelope.Data, out); err != nil {
		return fmt.Errorf("apiclient: decode %s answer: %w", r.URL, err)
	}
	return nil
}
