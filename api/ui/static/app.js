// ramd cluster page: polls this node's read endpoints once a second and
// renders them. Read-only: it sends GET requests only. Everything coming
// from the API is inserted as text (textContent), never as HTML.
(function () {
  'use strict';

  var POLL_MS = 1000;          // one poll a second: /cluster/status is cached server-side
  var TIMEOUT_MS = 2500;       // a node that does not answer within this is unreachable
  var HISTORY_EVERY = 10;      // history is re-read every 10 polls, and at once when the token moves
  var SPARK_MS = 5 * 60 * 1000; // sparklines cover the last five minutes
  var MAX_EVENTS = 200;
  var TOKEN_KEY = 'ramd.ui.token';
  // Relative to the page (/ui/), so the page also works behind a reverse
  // proxy that serves the node under a path prefix.
  var API = '../api/v1';

  function $(id) { return document.getElementById(id); }

  var token = '';
  try { token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { /* storage disabled */ }
  // A link may carry the token in its fragment (#token=...), as `ramd demo`
  // prints: the fragment never reaches a server. Move it into the session
  // store and out of the address bar and history entry at once.
  (function () {
    var m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!m) { return; }
    token = decodeURIComponent(m[1]);
    saveToken(token);
    history.replaceState(null, '', location.pathname + location.search);
  })();

  function saveToken(t) {
    try {
      if (t) { sessionStorage.setItem(TOKEN_KEY, t); } else { sessionStorage.removeItem(TOKEN_KEY); }
    } catch (e) { /* kept in memory only */ }
  }

  var st = {
    status: null, health: null, history: null, historyError: '',
    lastOK: 0, tick: 0, conn: 'connecting', error: '', refusedToken: false,
    samples: {},          // node id -> [{t, b, s}] lag samples
    formerPrimary: {},    // node id -> timeline it was primary on (for rewind events)
    events: [], timer: 0, inflight: false, again: false
  };

  function AuthError(msg) { this.message = msg; }
  function Unreachable(msg) { this.message = msg; }

  // get fetches one endpoint and returns its envelope's data. A 503 with
  // data (cluster health "failed") is an answer, not an error.
  function get(path) {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, TIMEOUT_MS);
    var headers = { 'Accept': 'application/json' };
    if (token) { headers['Authorization'] = 'Bearer ' + token; }
    return fetch(path, { headers: headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit' })
      .catch(function (e) {
        throw new Unreachable(e && e.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : 'connection refused or lost');
      })
      .then(function (resp) {
        if (resp.status === 401) { throw new AuthError('HTTP 401'); }
        return resp.json().catch(function () {
          throw new Error(path + ': HTTP ' + resp.status + ' without a JSON answer');
        }).then(function (body) {
          if (body && body.data !== undefined && body.data !== null) { return body.data; }
          throw new Error(path + ': ' + ((body && body.message) || 'HTTP ' + resp.status));
        });
      })
      .finally(function () { clearTimeout(timer); });
  }

  // poll runs one round and schedules the next. Only one round is ever in
  // flight: a poll asked for meanwhile (a token typed in) runs right after
  // it instead of starting a second loop.
  function poll() {
    clearTimeout(st.timer);
    if (st.inflight) { st.again = true; return; }
    st.inflight = true;
    st.tick++;
    var prevToken = st.status ? st.status.fencing_token : null;
    Promise.all([get(API + '/cluster/status'), get(API + '/cluster/health')])
      .then(function (r) {
        var status = r[0], health = r[1];
        var wantHistory = st.history === null || st.tick % HISTORY_EVERY === 0 ||
          prevToken !== status.fencing_token || (st.status && st.status.primary_node_id !== status.primary_node_id);
        if (!wantHistory) { return [status, health, st.history]; }
        return get(API + '/cluster/history').then(function (h) {
          st.historyError = '';
          return [status, health, h];
        }, function (e) {
          if (e instanceof Unreachable || e instanceof AuthError) { throw e; }
          st.historyError = e.message;
          return [status, health, st.history];
        });
      })
      .then(function (r) {
        var now = Date.now();
        if (st.conn === 'unreachable') { addEvent(now, 'alive', 'this node answers again'); }
        derive(st.status, r[0], st.health, r[1], st.history, r[2], now);
        sample(r[0], now);
        st.status = r[0]; st.health = r[1]; st.history = r[2];
        st.lastOK = now; st.conn = 'live'; st.error = '';
      }, function (e) {
        if (e instanceof AuthError) {
          st.refusedToken = !!token;
          st.conn = 'token';
        } else if (e instanceof Unreachable) {
          if (st.conn !== 'unreachable') { addEvent(Date.now(), 'unreachable', 'this node stopped answering: ' + e.message); }
          st.conn = 'unreachable'; st.error = e.message;
        } else {
          st.conn = 'error'; st.error = e.message || String(e);
        }
      })
      .then(function () {
        st.inflight = false;
        render();
        if (st.again) { st.again = false; poll(); return; }
        // Without a token there is nothing to poll for until one is given.
        if (st.conn !== 'token') { st.timer = setTimeout(poll, POLL_MS); }
      });
  }

  // ---- events derived from successive views ----

  function addEvent(t, kind, text) {
    st.events.unshift({ t: t, kind: kind, text: text });
    if (st.events.length > MAX_EVENTS) { st.events.length = MAX_EVENTS; }
  }

  function byID(nodes) {
    var m = {};
    (nodes || []).forEach(function (n) { m[n.node_id] = n; });
    return m;
  }

  function derive(prev, cur, prevH, curH, prevHist, curHist, now) {
    var nodes = byID(cur.nodes);
    Object.keys(nodes).forEach(function (id) {
      var n = nodes[id];
      if (n.role === 'primary' && n.state === 'alive') { st.formerPrimary[id] = n.timeline; }
    });
    if (!prev) {
      addEvent(now, 'info', 'page opened: ' + (cur.cluster_name || 'cluster') + ' as node ' + cur.self_node_id +
        ' sees it; primary ' + nodeName(cur, cur.primary_node_id));
      return;
    }
    var old = byID(prev.nodes);
    Object.keys(nodes).forEach(function (id) {
      var n = nodes[id], o = old[id];
      if (!o) { addEvent(now, 'alive', label(n) + ' joined the view'); return; }
      if (o.state !== n.state) {
        var was = o.role === 'primary' ? ' (it was the primary)' : '';
        if (n.state === 'dead') { addEvent(now, 'dead', 'member dead: ' + label(n) + was); }
        else if (n.state === 'suspect') { addEvent(now, 'suspect', 'member suspect: ' + label(n) + was); }
        else if (n.state === 'left') { addEvent(now, 'info', label(n) + ' left the cluster'); }
        else if (n.state === 'alive') { addEvent(now, 'alive', label(n) + ' is alive again'); }
      }
      if (o.role !== 'primary' && n.role === 'primary' && n.state === 'alive') {
        addEvent(now, 'promotion', 'promotion: ' + label(n) + ' is primary on timeline ' + n.timeline);
      }
      if (o.role === 'primary' && n.role !== 'primary' && n.state === 'alive') {
        addEvent(now, 'info', label(n) + ' is no longer primary (now ' + n.role + ')');
      }
      // A node seen as primary that now streams as a replica on a newer
      // timeline had its history rewritten: pg_rewind (or a re-clone).
      var ft = st.formerPrimary[id];
      if (ft !== undefined && n.role === 'replica' && n.streaming && n.timeline > ft) {
        addEvent(now, 'rewind', 'rewind: ' + label(n) + ', primary on timeline ' + ft + ', rejoined as a replica on timeline ' + n.timeline);
        delete st.formerPrimary[id];
      }
      if (n.healthy !== o.healthy && n.state === 'alive' && o.state === 'alive') {
        addEvent(now, n.healthy ? 'alive' : 'health', label(n) + (n.healthy ? ' is healthy' : ' is not healthy'));
      }
    });
    Object.keys(old).forEach(function (id) {
      if (!nodes[id]) { addEvent(now, 'info', label(old[id]) + ' was removed from the view'); }
    });
    if (cur.fencing_token > prev.fencing_token) {
      addEvent(now, 'lease', 'lease lost: fencing token ' + prev.fencing_token + ' → ' + cur.fencing_token +
        (prev.primary_node_id ? ', ' + nodeName(prev, prev.primary_node_id) + ' may no longer write' : ''));
    }
    if (prev.primary_node_id !== cur.primary_node_id) {
      if (cur.primary_node_id) {
        addEvent(now, 'failover', 'primary: ' + nodeName(prev, prev.primary_node_id) + ' → ' + nodeName(cur, cur.primary_node_id));
      } else {
        addEvent(now, 'noprimary', 'no writable primary (was ' + nodeName(prev, prev.primary_node_id) + ')');
      }
    }
    if (prev.coordinator_node_id !== cur.coordinator_node_id) {
      addEvent(now, cur.coordinator_node_id ? 'info' : 'noprimary', cur.coordinator_node_id
        ? 'coordinator: ' + nodeName(cur, cur.coordinator_node_id)
        : 'no coordinator: the election has no leader (no quorum?)');
    }
    if (prev.maintenance !== cur.maintenance) {
      addEvent(now, 'info', 'maintenance mode ' + (cur.maintenance ? 'on: no automatic failover' : 'off'));
    }
    if ((prev.failover_phase || '') !== (cur.failover_phase || '') && cur.failover_phase) {
      addEvent(now, 'info', 'failover phase: ' + cur.failover_phase);
    }
    if (prevH && curH && prevH.status !== curH.status) {
      addEvent(now, curH.status === 'healthy' ? 'alive' : 'health', 'cluster ' + prevH.status + ' → ' + curH.status);
    }
    if (prevHist && curHist && curHist.length > prevHist.length) {
      curHist.slice(prevHist.length).forEach(function (h) {
        addEvent(now, 'failover', 'history: ' + describeChange(cur, h));
      });
    }
  }

  function sample(cur, now) {
    (cur.nodes || []).forEach(function (n) {
      var s = st.samples[n.node_id] || (st.samples[n.node_id] = []);
      s.push({ t: now, b: n.lag_bytes, s: n.lag_seconds });
      while (s.length && s[0].t < now - SPARK_MS) { s.shift(); }
    });
  }

  // ---- rendering ----

  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === 'text') { e.textContent = attrs[k]; } else if (k === 'cls') { e.className = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) { continue; }
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return e;
  }

  function setText(id, text, cls) {
    var e = $(id);
    e.textContent = text;
    e.className = 'v' + (cls ? ' ' + cls : '');
    return e;
  }

  function label(n) { return n.name ? n.name + ' (' + n.node_id + ')' : 'node ' + n.node_id; }

  function nodeName(status, id) {
    if (!id) { return 'none'; }
    var n = byID(status && status.nodes)[id];
    return n ? label(n) : 'node ' + id;
  }

  function clock(t) {
    var d = new Date(t);
    return d.toLocaleTimeString([], { hour12: false });
  }

  function bytes(b) {
    if (b === undefined || b === null) { return '–'; }
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0, x = b;
    while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return (i === 0 ? x : x.toFixed(1)) + ' ' + u[i];
  }

  function ago(ms) {
    if (ms < 0) { return 'never'; }
    if (ms < 1500) { return 'now'; }
    var s = Math.round(ms / 1000);
    return s < 120 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  }

  function sparkline(samples) {
    var ns = 'http://www.w3.org/2000/svg', w = 120, h = 22;
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('width', w); svg.setAttribute('height', h);
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    var base = document.createElementNS(ns, 'line');
    base.setAttribute('x1', 0); base.setAttribute('x2', w); base.setAttribute('y1', h - 1); base.setAttribute('y2', h - 1);
    svg.appendChild(base);
    if (!samples || samples.length < 2) { return svg; }
    var now = samples[samples.length - 1].t, max = 1;
    // Until five minutes are gathered, the line spans what there is (at
    // least a minute), so a fresh page does not draw a sliver.
    var span = Math.min(SPARK_MS, Math.max(60 * 1000, now - samples[0].t));
    samples.forEach(function (p) { if (p.b > max) { max = p.b; } });
    var pts = samples.map(function (p) {
      var x = w - (now - p.t) / span * w;
      var y = h - 1 - p.b / max * (h - 3);
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    var line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', pts.join(' '));
    svg.appendChild(line);
    var title = document.createElementNS(ns, 'title');
    title.textContent = 'lag over the last ' + Math.round((now - samples[0].t) / 1000) + ' s, peak ' + bytes(max === 1 ? 0 : max);
    svg.appendChild(title);
    return svg;
  }

  function replace(id, children) {
    var e = $(id);
    while (e.firstChild) { e.removeChild(e.firstChild); }
    children.forEach(function (c) { e.appendChild(c); });
  }

  function render() {
    renderConn();
    $('forget-token').hidden = !token;
    if (!st.status) { return; }
    var s = st.status, h = st.health;
    $('cluster-name').textContent = s.cluster_name || 'ramd cluster';
    $('viewpoint').textContent = 'as seen by ' + nodeName(s, s.self_node_id);
    document.title = (s.cluster_name || 'ramd') + ' · ' + (s.primary_node_id ? 'primary ' + nodeName(s, s.primary_node_id) : 'NO PRIMARY');

    var p = setText('primary', s.primary_node_id ? nodeName(s, s.primary_node_id) : 'none', s.primary_node_id ? 'ok' : 'bad');
    p.setAttribute('data-node-id', String(s.primary_node_id || 0));
    if (h) {
      var hs = setText('health-status', h.status, h.status === 'healthy' ? 'ok' : h.status === 'degraded' ? 'warn' : 'bad');
      hs.setAttribute('data-status', h.status);
    }
    setText('fencing-token', String(s.fencing_token || 0)).setAttribute('data-token', String(s.fencing_token || 0));
    setText('coordinator', s.coordinator_node_id ? nodeName(s, s.coordinator_node_id) : 'none', s.coordinator_node_id ? '' : 'bad');
    setText('maintenance', s.maintenance ? 'ON: no automatic failover' : 'off', s.maintenance ? 'warn' : '');
    setText('backend', backendName(s));
    var sync = s.synchronous_mode || 'off';
    if (sync !== 'off') { sync += ' (' + (s.synchronous_node_count || 1) + ' of ' + ((s.synchronous_standbys || []).join(', ') || 'all replicas') + ')'; }
    setText('sync', sync);
    var q = quorum(s, h);
    setText('quorum', q.text, q.cls).title = q.title || '';

    renderFindings(s, h);
    renderTopology(s);
    renderEvents();
    renderHistory(s);
  }

  function renderConn() {
    var c = $('conn'), main = $('main');
    c.setAttribute('data-state', st.conn);
    var un = $('unreachable'), auth = $('auth');
    un.hidden = st.conn !== 'unreachable';
    auth.hidden = st.conn !== 'token';
    main.className = st.conn === 'live' ? '' : 'stale';
    switch (st.conn) {
      case 'live':
        c.textContent = 'live · updated ' + clock(st.lastOK);
        c.className = 'conn conn-live';
        break;
      case 'unreachable':
        c.textContent = 'node unreachable';
        c.className = 'conn conn-bad';
        $('unreachable-text').textContent = 'This node (' + location.host + ') does not answer: ' + st.error + '. ' +
          (st.lastOK ? 'What follows is its last view, from ' + clock(st.lastOK) + '; it is not current.' : 'It has not answered since this page opened.') +
          ' The page keeps trying every second.';
        renderOthers();
        break;
      case 'token':
        c.textContent = 'token required';
        c.className = 'conn conn-warn';
        $('auth-msg').textContent = st.refusedToken
          ? 'The token was refused (HTTP 401). Enter the read token ([api] read_token) or the admin token; it is kept in this browser tab only.'
          : "This node's API needs a token to read the cluster state. Enter the read token ([api] read_token) or the admin token. It is kept in this browser tab only (sessionStorage) and sent only to this node.";
        break;
      case 'error':
        c.textContent = 'error: ' + st.error;
        c.className = 'conn conn-warn';
        break;
      default:
        c.textContent = 'connecting…';
        c.className = 'conn conn-wait';
    }
  }

  // renderOthers links the other nodes' pages, from the last view.
  function renderOthers() {
    var kids = [];
    var others = ((st.status && st.status.nodes) || []).filter(function (n) { return !n.self && n.api_url; });
    if (others.length) {
      kids.push(document.createTextNode('Try another node: '));
      others.forEach(function (n, i) {
        if (i) { kids.push(document.createTextNode(' · ')); }
        var url = n.api_url.replace(/\/+$/, '') + '/ui/';
        kids.push(el('a', { href: url, text: label(n) + ' ' + url }));
      });
    }
    replace('unreachable-others', kids);
  }

  function backendName(s) {
    var b = s.election_backend || s.election || '';
    if (b === 'pglock') { return 'pglock (advisory lock)'; }
    return 'quorum (raft)';
  }

  // quorum judges the election's state: the API reports a coordinator
  // only while the raft group has a leader, which needs a majority.
  function quorum(s, h) {
    // The pglock backend has no quorum of daemons: its decisions need
    // the coordination database.
    if ((s.election_backend || s.election) === 'pglock') {
      if (s.coordination_unreachable) {
        return { text: 'coordination DB unreachable', cls: 'bad', title: s.coordination_unreachable };
      }
      return { text: 'coordination DB reachable', cls: 'ok' };
    }
    if (s.quorum !== undefined && typeof s.quorum === 'boolean') {
      return { text: s.quorum ? 'yes' : 'NO', cls: s.quorum ? 'ok' : 'bad' };
    }
    var total = h ? h.nodes_total : (s.nodes || []).length;
    var alive = h ? h.nodes_alive : (s.nodes || []).filter(function (n) { return n.state === 'alive'; }).length;
    var need = Math.floor(total / 2) + 1;
    var counts = ', ' + alive + '/' + total + ' alive';
    if (s.coordinator_node_id) { return { text: 'yes' + counts, cls: alive >= need ? 'ok' : 'warn', title: need + ' of ' + total + ' needed' }; }
    return { text: 'NO leader' + counts, cls: 'bad', title: 'no coordinator: ' + need + ' of ' + total + ' needed' };
  }

  function renderFindings(s, h) {
    var items = [];
    (s.warnings || []).forEach(function (w) { items.push({ text: w, cls: 'bad' }); });
    if (h) {
      (h.security_findings || []).forEach(function (f) {
        items.push({ text: 'security (node ' + f.node_id + '): ' + f.message, cls: 'warn' });
      });
      (h.reasons || []).forEach(function (r) { items.push({ text: r, cls: h.status === 'failed' ? 'bad' : 'warn' }); });
    }
    if (s.switchover) {
      items.push({ text: 'switchover pending from ' + nodeName(s, s.switchover.from) +
        (s.switchover.to ? ' to ' + nodeName(s, s.switchover.to) : '') +
        (s.switchover.scheduled_at ? ' at ' + s.switchover.scheduled_at : ''), cls: 'warn' });
    }
    if (st.historyError) { items.push({ text: 'history: ' + st.historyError, cls: 'warn' }); }
    if (!items.length) { items.push({ text: 'none: every node alive, healthy and streaming', cls: 'ok' }); }
    replace('findings', items.map(function (i) { return el('li', { cls: i.cls, text: i.text }); }));
  }

  function renderTopology(s) {
    var nodes = (s.nodes || []).slice().sort(function (a, b) { return a.node_id - b.node_id; });
    var primary = nodes.filter(function (n) { return n.node_id === s.primary_node_id; });
    var streaming = nodes.filter(function (n) { return n.node_id !== s.primary_node_id && n.role === 'replica' && n.streaming && n.state === 'alive'; });
    var rest = nodes.filter(function (n) { return primary.indexOf(n) < 0 && streaming.indexOf(n) < 0; });
    var out = [];
    out.push(el('div', { cls: 'tier', id: 'tier-primary' }, primary.length ? nodeCard(s, primary[0]) : el('p', { cls: 'bad', text: 'no writable primary in this view' })));
    if (streaming.length) {
      out.push(el('div', { cls: 'arrow', text: '▼ streaming WAL from ' + (primary.length ? label(primary[0]) : 'the primary') }));
      out.push(el('div', { cls: 'tier', id: 'tier-replicas' }, ...streaming.map(function (n) { return nodeCard(s, n); })));
    }
    if (rest.length) {
      out.push(el('div', { cls: 'arrow', text: 'not streaming' }));
      out.push(el('div', { cls: 'tier', id: 'tier-other' }, ...rest.map(function (n) { return nodeCard(s, n); })));
    }
    replace('topology', out);
  }

  function nodeCard(s, n) {
    var isPrimary = n.node_id === s.primary_node_id;
    var title = el('div', { cls: 'title' },
      el('span', { cls: 'name', text: label(n) }),
      el('span', { cls: 'badge ' + n.role, text: n.role }),
      el('span', { cls: 'badge ' + (n.state === 'alive' ? 'ok' : 'bad'), text: n.state }),
      n.node_id === s.coordinator_node_id ? el('span', { cls: 'badge', title: 'runs the election (raft leader)', text: 'coordinator' }) : null,
      n.self ? el('span', { cls: 'badge muted', text: 'this node' }) : null);
    var upstream = isPrimary ? 'writable primary' : (n.role === 'replica' && n.streaming ? 'streams from ' + nodeName(s, s.primary_node_id) : 'not streaming');
    var tags = el('dd');
    var keys = Object.keys(n.tags || {}).sort();
    if (!keys.length) { tags.textContent = '–'; }
    keys.forEach(function (k) { tags.appendChild(el('span', { cls: 'tag', text: k + '=' + n.tags[k] })); });
    var lag = isPrimary ? el('dd', { cls: 'muted', text: 'none (primary)' })
      : el('dd', {}, bytes(n.lag_bytes) + ' · ' + (n.lag_seconds || 0).toFixed(1) + ' s ', sparkline(st.samples[n.node_id]));
    var dl = el('dl', {},
      el('dt', { text: 'health' }), el('dd', { cls: n.healthy ? 'ok' : 'bad', text: (n.healthy ? 'healthy' : 'unhealthy') + (n.pg_running ? '' : ', PostgreSQL down') }),
      el('dt', { text: 'upstream' }), el('dd', { text: upstream }),
      el('dt', { text: 'timeline' }), el('dd', { text: String(n.timeline) }),
      el('dt', { text: 'LSN' }), el('dd', { text: n.lsn + (n.role === 'replica' ? ' (replayed ' + n.replay_lsn + ')' : '') }),
      el('dt', { text: 'lag' }), lag,
      el('dt', { text: 'tags' }), tags,
      el('dt', { text: 'postgres' }), el('dd', { text: (n.pg_host || '') + ':' + n.pg_port + (n.pg_version ? ' · ' + n.pg_version : '') }),
      el('dt', { text: 'last seen' }), el('dd', { text: ago(n.last_seen_ms) }));
    var card = el('article', { cls: 'node role-' + n.role + ' state-' + n.state, 'data-node-id': String(n.node_id), 'data-role': n.role, 'data-state': n.state }, title, dl);
    return card;
  }

  function renderEvents() {
    replace('events', st.events.map(function (e) {
      return el('li', { cls: 'kind-' + e.kind, 'data-kind': e.kind }, el('time', { text: clock(e.t) }), e.text);
    }));
  }

  function describeChange(s, h) {
    return (h.reason ? h.reason + ': ' : '') + nodeName(s, h.old_primary) + ' → ' + nodeName(s, h.new_primary) +
      ' (token ' + h.fencing_token + ', timeline ' + h.timeline + (h.lsn ? ', at ' + h.lsn : '') + ')';
  }

  function renderHistory(s) {
    if (!st.history) {
      replace('history', [el('li', { cls: 'muted', text: st.historyError ? 'unavailable: ' + st.historyError : 'loading…' })]);
      return;
    }
    if (!st.history.length) {
      replace('history', [el('li', { cls: 'muted', text: 'no change of primary recorded' })]);
      return;
    }
    replace('history', st.history.slice().reverse().map(function (h) {
      var t = h.time ? new Date(h.time) : null;
      return el('li', { 'data-old': String(h.old_primary), 'data-new': String(h.new_primary), 'data-token': String(h.fencing_token) },
        el('time', { text: t && !isNaN(t) ? t.toLocaleString([], { hour12: false }) : '' }), describeChange(s, h));
    }));
  }

  // ---- token form ----

  $('auth-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    token = $('token-input').value.trim();
    $('token-input').value = '';
    saveToken(token);
    st.conn = 'connecting';
    render();
    poll();
  });
  $('forget-token').addEventListener('click', function () {
    token = '';
    saveToken('');
    poll();
  });

  poll();
})();
