// Package ui holds the read-only cluster page that every node serves at
// /ui/ on its API port: plain HTML, CSS and JavaScript embedded in the
// binary (no build step, no CDN, works offline).
//
// The files carry no cluster data and no secret, so the API serves them
// without a token; the page itself fetches the data from the node's
// existing read endpoints (/api/v1/cluster/status, /cluster/health,
// /cluster/history) with the token the user types in, which it keeps in
// the browser's sessionStorage only. It polls once a second rather than
// using Server-Sent Events because EventSource cannot send an
// Authorization header: a token would have to travel in the URL, where
// proxies and access logs keep it. Events (member dead, promotion, lease
// lost, rewind, ...) are derived in the browser from the difference
// between two successive views; docs/ui.md describes the page.
package ui
