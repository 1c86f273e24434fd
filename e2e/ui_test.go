package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ramd/ramd/internal/cluster"
)

// chromiumFlags are the browser's flags: headless, no sandbox (the tests
// run as root), and nothing that would phone home or slow the start.
var chromiumFlags = []string{
	"headless", "no-sandbox", "disable-gpu", "disable-background-networking",
	"disable-component-update", "disable-sync", "no-first-run",
}

// findChromium returns Debian's chromium, failing in CI (where .ci/run
// installs it) and skipping elsewhere when it is missing.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required in CI (.ci/run installs Debian's chromium)")
	}
	t.Skip("chromium not installed (apt-get install -y --no-install-recommends chromium)")
	return ""
}

// artifactDir is where the test leaves its screenshots: under
// $RAMD_ARTIFACTS/<test> when set, else a new directory under the system
// temporary directory that is kept (and logged) after the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	var dir string
	if base := os.Getenv("RAMD_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		d, err := os.MkdirTemp("", "ramd-ui-artifacts-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	t.Logf("screenshots go to %s", dir)
	return dir
}

// browser starts a headless chromium with a fresh profile and returns the
// context of its first tab; it is stopped when the test ends.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	bin := findChromium(t)
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(bin), chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 1000)}
	for _, f := range chromiumFlags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	out := &lockedBuffer{}
	opts = append(opts, chromedp.CombinedOutput(out))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	tab, tcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		tcancel()
		acancel() // waits for the browser to exit, before profile is removed
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	// Start the browser now, so that a broken install fails here.
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v\n%s", bin, err, out.String())
	}
	return tab
}

// lockedBuffer lets chromium's output goroutine and the test share a buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// domEventually evaluates a JavaScript expression in tab every 100 ms
// until it returns "" (the condition holds) or the time is up; otherwise
// the expression returns why not.
func domEventually(t *testing.T, tab context.Context, within time.Duration, what, js string) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	for time.Since(start) < within {
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		cancel()
		if err != nil {
			why = err.Error()
		} else if got == "" {
			return time.Since(start)
		} else {
			why = got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %s", what, within, why)
	return 0
}

func screenshot(t *testing.T, tab context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s (%d bytes)", path, len(png))
}

// pageText returns the visible text of an element (for failure messages
// and logs).
func pageText(tab context.Context, selector string) string {
	s, err := chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ''`, selector)))
	if err != nil {
		return err.Error()
	}
	return s
}

// showsPrimary is a condition (see domEventually): the page shows node
// id as the primary, both in the summary and as the topology's top card.
func showsPrimary(id int, name string) string {
	return fmt.Sprintf(`(() => {
		const p = document.getElementById('primary');
		if (p.dataset.nodeId !== '%[1]d') return 'summary shows primary ' + p.dataset.nodeId + ' (' + p.textContent + ')';
		if (!p.textContent.includes('%[2]s')) return 'summary text ' + p.textContent;
		const card = document.querySelector('#tier-primary .node');
		if (!card || card.dataset.nodeId !== '%[1]d' || card.dataset.role !== 'primary') return 'topology top card: ' + (card ? card.dataset.nodeId + '/' + card.dataset.role : 'none');
		if (document.getElementById('conn').dataset.state !== 'live') return 'connection ' + document.getElementById('conn').dataset.state;
		return '';
	})()`, id, name)
}

// markupTag is a tag value that would run script if inserted as HTML.
const markupTag = `<img/src=x/onerror=window.__ramdXSS=1>`

// TestUIBrowser opens the cluster page of a real 3-node cluster in
// headless chromium, checks through the DOM that it shows the primary,
// kills the primary and checks that the page, never reloaded, shows the
// new primary, the failover in the history and the events; a second tab
// open on the killed node shows "node unreachable". Screenshots of each
// stage are kept (see artifactDir). It costs one cluster formation, one
// failover and a browser start: about 30-40 s on the 2-core CI machine.
func TestUIBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	findChromium(t) // skip before launching a cluster when there is no browser
	// A tag carrying markup: the page must show it as text, never run it.
	c, old := formedPrimaryWith(t, ctx, "[cluster.tags]\nzone = \""+markupTag+"\"\n")
	var viewer *cluster.Node // a replica: its page must survive the failover
	for _, n := range c.Nodes {
		if n != old {
			viewer = n
		}
	}
	dir := artifactDir(t)
	tab := browser(t, ctx)
	// A second tab in the same browser, on the primary's own page.
	oldTab, oldCancel := chromedp.NewContext(tab)
	defer oldCancel()

	ok := t.Run("token prompt and primary shown", func(t *testing.T) {
		if err := chromedp.Do(tab, chromedp.Navigate(viewer.APIURL()+"/ui/")); err != nil {
			t.Fatal(err)
		}
		// Tokens are configured: the page asks for one instead of
		// showing an empty cluster.
		domEventually(t, tab, 10*time.Second, "token prompt", `(() => {
			if (document.getElementById('auth').hidden) return 'no token prompt; connection ' + document.getElementById('conn').dataset.state;
			return '';
		})()`)
		// A wrong token is refused, and the page says so.
		if err := chromedp.Do(tab,
			chromedp.SendKeys("#token-input", "not-the-token"),
			chromedp.Click("#token-submit"),
		); err != nil {
			t.Fatal(err)
		}
		domEventually(t, tab, 10*time.Second, "wrong token refused", `(() => {
			if (document.getElementById('auth').hidden) return 'no token prompt after a wrong token';
			if (!document.getElementById('auth-msg').textContent.includes('refused')) return 'message: ' + document.getElementById('auth-msg').textContent;
			return '';
		})()`)
		if err := chromedp.Do(tab,
			chromedp.SendKeys("#token-input", c.Token),
			chromedp.Click("#token-submit"),
		); err != nil {
			t.Fatal(err)
		}
		domEventually(t, tab, 10*time.Second, "primary shown", showsPrimary(old.ID, old.Name))
		// The token lives in the tab's session storage only.
		stored, err := chromedp.Run(tab, chromedp.Evaluate[string](`sessionStorage.getItem('ramd.ui.token') + '|' + localStorage.length`))
		if err != nil {
			t.Fatal(err)
		}
		if stored != c.Token+"|0" {
			t.Errorf("token storage: %q, want the token in sessionStorage and nothing in localStorage", stored)
		}
		// Every node appears, the replicas as streaming from the primary.
		domEventually(t, tab, 10*time.Second, "replicas streaming", fmt.Sprintf(`(() => {
			const cards = document.querySelectorAll('#tier-replicas .node[data-role="replica"]');
			if (cards.length !== %d) return cards.length + ' streaming replica cards';
			for (const c of cards) if (!c.innerText.includes('streams from %s')) return 'card ' + c.dataset.nodeId + ': ' + c.innerText;
			if (document.getElementById('fencing-token').dataset.token === '0') return 'no fencing token shown';
			if (!document.getElementById('quorum').textContent.startsWith('yes')) return 'quorum: ' + document.getElementById('quorum').textContent;
			return '';
		})()`, len(c.Nodes)-1, old.Name))
		domEventually(t, tab, time.Second, "tags shown as text", fmt.Sprintf(`(() => {
			if (window.__ramdXSS) return 'the tag ran as markup';
			if (document.querySelector('#topology img')) return 'the tag became an element';
			const tags = [...document.querySelectorAll('#topology .tag')].map(e => e.textContent);
			if (tags.filter(t => t === 'zone=' + %q).length !== %d) return 'tags: ' + JSON.stringify(tags);
			return '';
		})()`, markupTag, len(c.Nodes)))
		// A marker that a reload would wipe.
		if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.__ramdNoReload = true`)); err != nil {
			t.Fatal(err)
		}
		// Let the sparklines gather a few samples before the picture.
		time.Sleep(2 * time.Second)
		screenshot(t, tab, dir, "1-before-failover.png")
	})
	if !ok {
		return
	}

	ok = t.Run("phone width", func(t *testing.T) {
		// The link form `ramd demo` prints: the token in the fragment.
		if err := chromedp.Do(oldTab,
			chromedp.EmulateViewport(390, 844),
			chromedp.Navigate(old.APIURL()+"/ui/#token="+c.Token)); err != nil {
			t.Fatal(err)
		}
		domEventually(t, oldTab, 10*time.Second, "primary shown on the primary's page", showsPrimary(old.ID, old.Name))
		domEventually(t, oldTab, time.Second, "layout", `(() => {
			if (location.hash !== '') return 'the token stayed in the address: ' + location.hash;
			const w = document.documentElement.scrollWidth;
			if (w > window.innerWidth) return 'page is ' + w + ' px wide on a ' + window.innerWidth + ' px screen';
			return '';
		})()`)
		screenshot(t, oldTab, dir, "2-phone.png")
	})
	if !ok {
		return
	}

	if err := old.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashPostgres(t, old)
	killedAt := time.Now()

	t.Run("node unreachable", func(t *testing.T) {
		took := domEventually(t, oldTab, 15*time.Second, "unreachable state", `(() => {
			const conn = document.getElementById('conn');
			if (conn.dataset.state !== 'unreachable') return 'connection ' + conn.dataset.state;
			const b = document.getElementById('unreachable');
			if (b.hidden || !b.innerText.includes('Node unreachable')) return 'no unreachable banner';
			if (!document.querySelector('#unreachable-others a')) return 'no link to another node';
			if (!document.querySelector('#topology .node')) return 'the last view is gone (blank page)';
			return '';
		})()`)
		t.Logf("the killed node's page showed \"node unreachable\" %.1f s after the kill (polls every 1 s, 2.5 s timeout)", took.Seconds())
		screenshot(t, oldTab, dir, "3-node-unreachable.png")
		t.Logf("banner: %s", pageText(oldTab, "#unreachable"))
	})

	t.Run("failover shown without reload", func(t *testing.T) {
		newP := waitWritable(t, c, 60*time.Second, old)
		electedAt := time.Now()
		t.Logf("%s writable %.1f s after the kill", newP.Name, electedAt.Sub(killedAt).Seconds())
		took := domEventually(t, tab, 15*time.Second, "new primary shown", showsPrimary(newP.ID, newP.Name))
		t.Logf("the page showed %s as primary %.1f s after the API did", newP.Name, took.Seconds())
		domEventually(t, tab, 15*time.Second, "failover in the history", fmt.Sprintf(`(() => {
			const li = document.querySelector('#history li[data-old="%d"][data-new="%d"]');
			if (!li) return 'history: ' + document.getElementById('history').innerText;
			if (!window.__ramdNoReload) return 'the page was reloaded';
			const kinds = [...document.querySelectorAll('#events li')].map(e => e.dataset.kind);
			for (const k of ['promotion', 'lease']) if (!kinds.includes(k)) return 'no ' + k + ' event: ' + kinds.join(',');
			return '';
		})()`, old.ID, newP.ID))
		screenshot(t, tab, dir, "4-after-failover.png")
		t.Logf("history:\n%s", pageText(tab, "#history"))
		t.Logf("events:\n%s", pageText(tab, "#events"))
	})
}
