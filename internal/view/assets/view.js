// The dynometrics live view: polls /api/metrics (304 until a bucket arrives),
// keeps one card per metric, and draws the cards on screen with uPlot from
// /api/series. No framework, nothing loaded from another host.
'use strict';
(() => {
  const $ = (sel) => document.querySelector(sel);
  const statusEl = $('#status'), listEl = $('#list'), chartsEl = $('#charts');
  const filterEl = $('#filter'), emptyEl = $('#empty'), appEl = $('#app');
  let app = '';             // multi-app mode: the app shown ('' otherwise)
  const appQuery = (sep) => (app ? `${sep}app=${encodeURIComponent(app)}` : '');

  const PALETTE = ['#3a63d8', '#e8793b', '#2a9d6f', '#c2417a', '#8a5cd0', '#c9a227', '#2aa0b8', '#d64545', '#6b8e23', '#8c6d4f'];
  const ALL_COLOR = '#1d2329';
  const STATS = ['median', 'perc95', 'perc99', 'max', 'count'];
  const HEIGHT = 230;

  const cards = new Map(); // metric name → card
  let info = null;          // the last answer of api/metrics
  let rendered = 0;         // version every visible card shows

  // A source keeps its colour on every chart.
  function color(src) {
    let h = 7;
    for (const c of src) h = (h * 31 + c.codePointAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }

  async function getJSON(url) {
    // no-cache: the browser revalidates with the ETag, the view answers 304
    // until a new bucket arrives, and fetch hands back the cached body.
    const r = await fetch(url, { cache: 'no-cache', headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`${url}: ${r.status} ${(await r.text()).slice(0, 200)}`);
    return r.json();
  }

  const fmtTime = (s) => new Date(s * 1000).toLocaleTimeString();
  const fmtNum = (v) => v == null ? '–' : v.toLocaleString(undefined, { maximumFractionDigits: 3 });
  function fmtDuration(s) {
    if (s % 3600 === 0) return `${s / 3600} h`;
    if (s % 60 === 0) return `${s / 60} min`;
    return `${s} s`;
  }

  // axisValues formats the y ticks with as many decimals as the tick step
  // needs (uPlot's default keeps three, so 0.0052 and 0.0054 both read 0.005).
  function axisValues(u, splits, axisIdx, space, incr) {
    const [mant, exp] = String(+incr.toPrecision(6)).split('e');
    const dp = Math.min(Math.max(0, (mant.split('.')[1] || '').length - (+exp || 0)), 12);
    return splits.map((v) => v.toLocaleString(undefined, { minimumFractionDigits: dp, maximumFractionDigits: dp }));
  }

  function axisLabel(m, stat) {
    const per = `per ${fmtDuration(info.resolution)}`;
    if (m.kind === 'count') return m.unit ? `${m.unit} ${per}` : `count ${per}`;
    if (m.kind === 'measure' && stat === 'count') return `values ${per}`;
    return m.unit || '';
  }

  function allNote(m, stat) {
    switch (m.kind) {
      case 'count': return 'all dynos: the sum of every dyno\'s count in each bucket';
      case 'sample': return 'all dynos: the average of each dyno\'s last value in each bucket';
      default:
        return stat === 'count'
          ? 'all dynos: the number of values from every dyno in each bucket'
          : `all dynos: the ${stat} of every dyno's values together (merged distribution), not an average of ${stat}s`;
    }
  }

  function makeCard(m) {
    const el = document.createElement('article');
    el.className = 'metric';
    el.id = 'm-' + m.name;
    el.dataset.name = m.name;
    const h2 = document.createElement('h2');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = m.name;
    const kind = document.createElement('span');
    kind.className = 'kind';
    h2.append(name, kind);
    const card = { m, el, kind, chartEl: document.createElement('div'), note: document.createElement('p'),
      u: null, key: '', stat: 'median', stale: true, visible: false, busy: null, series: null };
    if (m.kind === 'measure') {
      const sel = document.createElement('select');
      sel.setAttribute('aria-label', `statistic of ${m.name}`);
      for (const s of STATS) sel.add(new Option(s, s));
      sel.addEventListener('change', () => { card.stat = sel.value; card.stale = true; refresh(card); });
      h2.append(sel);
    }
    card.chartEl.className = 'chart';
    card.note.className = 'note';
    el.append(h2, card.chartEl, card.note);
    observer.observe(el);
    return card;
  }

  // Only cards on screen fetch their series; the others are marked stale
  // and fetch when they scroll into view.
  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const card = cards.get(e.target.dataset.name);
      if (!card) continue;
      card.visible = e.isIntersecting;
      if (card.visible && card.stale) refresh(card);
    }
  }, { rootMargin: '200px' });

  // refresh fetches a card's series and draws them; concurrent calls share
  // one fetch.
  function refresh(card) {
    if (card.busy) { card.again = true; return card.busy; }
    card.stale = false;
    const q = `api/series?name=${encodeURIComponent(card.m.name)}` + (card.m.kind === 'measure' ? `&stat=${card.stat}` : '') + appQuery('&');
    card.busy = getJSON(q).then((s) => draw(card, s)).catch((e) => {
      card.stale = true;
      card.note.textContent = `could not load: ${e.message}`;
    }).finally(() => {
      card.busy = null;
      if (card.again) { card.again = false; refresh(card); }
    });
    return card.busy;
  }

  // draw aligns the lines on the union of their bucket times (a dyno without
  // a value in a bucket gets null there) and (re)creates the chart when the
  // set of lines changed.
  function draw(card, s) {
    card.series = s;
    const xs = [...new Set(s.series.flatMap((l) => l.points.map((p) => p[0])))].sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const ys = s.series.map((l) => {
      const y = new Array(xs.length).fill(null);
      for (const [t, v] of l.points) y[at.get(t)] = v;
      return y;
    });
    const data = [xs, ...ys];
    card.kind.textContent = s.kind + (s.unit ? ` · ${s.unit}` : '') + ` · ${s.series.length - 1} dyno${s.series.length === 2 ? '' : 's'}`;
    card.note.textContent = allNote(s, s.stat);
    const key = JSON.stringify([s.stat, s.unit, s.series.map((l) => [l.source, l.ended])]);
    if (card.u && key === card.key) {
      card.u.setData(data);
      return;
    }
    if (card.u) card.u.destroy();
    card.key = key;
    const series = [{}].concat(s.series.map((l) => {
      const all = l.source === info.all_source;
      const label = all ? 'all dynos' : (l.source || '(no source)') + (l.ended ? ' (ended)' : '');
      return {
        label,
        stroke: all ? ALL_COLOR : color(l.source),
        width: all ? 2.5 : 1.5,
        dash: l.ended ? [5, 4] : undefined,
        spanGaps: true,
        value: (u, v) => fmtNum(v),
      };
    }));
    const opts = {
      width: Math.max(card.chartEl.clientWidth, 300),
      height: HEIGHT,
      series,
      scales: { x: { time: true } },
      axes: [{}, { label: axisLabel(s, s.stat), size: 70, values: axisValues }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    card.chartEl.textContent = '';
    card.u = new uPlot(opts, data, card.chartEl);
    // Mark the legend rows, so that ended dynos and the all-dynos line stand out.
    card.u.root.querySelectorAll('.u-legend .u-series').forEach((tr, i) => {
      const l = s.series[i - 1];
      if (!l) return;
      tr.classList.toggle('all', l.source === info.all_source);
      tr.classList.toggle('ended', l.ended);
    });
  }

  new ResizeObserver(() => {
    for (const c of cards.values()) {
      if (c.u && c.chartEl.clientWidth > 0 && c.chartEl.clientWidth !== c.u.width) {
        c.u.setSize({ width: c.chartEl.clientWidth, height: HEIGHT });
      }
    }
  }).observe(chartsEl);

  function renderList() {
    listEl.textContent = '';
    for (const m of info.metrics) {
      const li = document.createElement('li');
      li.dataset.name = m.name;
      const a = document.createElement('a');
      a.href = '#' + encodeURIComponent('m-' + m.name);
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = m.name;
      name.title = m.name;
      const meta = document.createElement('span');
      meta.className = 'meta';
      const live = m.sources.filter((s) => !s.ended).length;
      meta.textContent = `${m.kind} · ${live}/${m.sources.length}`;
      meta.title = `${live} of ${m.sources.length} dynos reporting`;
      a.append(name, meta);
      li.append(a);
      listEl.append(li);
    }
    applyFilter();
  }

  function applyFilter() {
    const q = filterEl.value.trim().toLowerCase();
    const match = (name) => q === '' || name.toLowerCase().includes(q);
    for (const li of listEl.children) li.hidden = !match(li.dataset.name);
    for (const c of cards.values()) c.el.hidden = !match(c.m.name);
  }
  filterEl.addEventListener('input', applyFilter);

  async function update(m) {
    info = m;
    const names = new Set(m.metrics.map((x) => x.name));
    for (const [name, c] of cards) {
      if (!names.has(name)) {
        observer.unobserve(c.el);
        if (c.u) c.u.destroy();
        c.el.remove();
        cards.delete(name);
      }
    }
    let prev = null;
    for (const x of m.metrics) {
      let c = cards.get(x.name);
      if (!c) {
        c = makeCard(x);
        cards.set(x.name, c);
        if (prev) prev.el.after(c.el); else chartsEl.prepend(c.el);
      }
      c.m = x;
      c.stale = true;
      prev = c;
    }
    emptyEl.hidden = m.metrics.length > 0;
    renderList();
    await Promise.all([...cards.values()].filter((c) => c.visible && !c.el.hidden).map(refresh));
    rendered = m.version;
  }

  // Multi-app mode: the answer names the app shown and every app.
  function renderApps(m) {
    appEl.hidden = !m.apps;
    if (!m.apps) { app = ''; return; }
    if ([...appEl.options].map((o) => o.value).join('\n') !== m.apps.join('\n')) {
      appEl.textContent = '';
      for (const a of m.apps) appEl.add(new Option(a, a));
    }
    app = m.app;
    appEl.value = app;
  }
  appEl.addEventListener('change', () => { app = appEl.value; version = -1; tick(); });

  let version = -1;
  async function poll() {
    setTimeout(poll, await tick());
  }
  // tick loads api/metrics once and returns how long to wait for the next.
  async function tick() {
    let wait = 2000;
    try {
      const m = await getJSON('api/metrics' + appQuery('?'));
      wait = Math.min(Math.max(m.resolution * 200, 1000), 5000);
      renderApps(m);
      if (m.version !== version) {
        version = m.version;
        await update(m);
      }
      statusEl.classList.remove('error');
      statusEl.textContent = m.latest
        ? `latest bucket ${fmtTime(m.latest)} · ${fmtDuration(m.resolution)} buckets · last ${fmtDuration(m.window)}`
        : 'waiting for the first bucket';
      const cap = m.series_cap;
      if (cap && (cap.evicted > 0 || cap.dropped > 0)) {
        statusEl.textContent += ` · series cap of ${cap.max} reached: ${cap.evicted} older series no longer shown` +
          (cap.dropped > 0 ? `, ${cap.dropped} new series-buckets left out` : '') + ' (VIEW_MAX_SERIES)';
      }
    } catch (e) {
      statusEl.classList.add('error');
      statusEl.textContent = `view unreachable, retrying (${e.message})`;
    }
    return wait;
  }
  poll();

  // For tests and the curious: what each drawn chart holds.
  window.dynoview = {
    rendered: () => rendered,
    charts: () => [...cards.values()].map((c) => ({
      name: c.m.name,
      stat: c.series ? c.series.stat : null,
      labels: c.u ? c.u.series.slice(1).map((s) => s.label) : [],
      axis: c.u ? c.u.axes[1].label : null,
      data: c.u ? c.u.data.map((a) => Array.from(a)) : null,
      canvas: !!c.el.querySelector('canvas'),
      visible: c.visible,
    })),
    refresh: (name) => refresh(cards.get(name)),
  };
})();
