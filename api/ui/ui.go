package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// Asset is one embedded file, ready to serve.
type Asset struct {
	Body        []byte
	ContentType string
	// ETag is a strong validator derived from the content, so a browser
	// revalidates cheaply and never keeps a stale page after an upgrade.
	ETag string
}

// assets maps a name relative to /ui/ ("" is the page itself) to its file.
var assets = mustLoad()

func mustLoad() map[string]Asset {
	out := map[string]Asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(p, "static/")
		out[name] = Asset{Body: b, ContentType: ct, ETag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in: failing to read them is a build defect.
		panic("ui: reading the embedded files: " + err.Error())
	}
	if _, ok := out["index.html"]; !ok {
		panic("ui: index.html is not embedded")
	}
	out[""] = out["index.html"]
	return out
}

// Lookup returns the file served at /ui/<name>; name "" is the page.
func Lookup(name string) (Asset, bool) {
	a, ok := assets[name]
	return a, ok
}

// Names lists every servable name except "" (for tests).
func Names() []string {
	var out []string
	for n := range assets {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ContentSecurityPolicy is sent with every file: the page loads only its
// own files, talks only to its own node, and cannot be framed.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
