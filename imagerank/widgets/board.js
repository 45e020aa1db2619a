// imagerank generation board (anywidget ESM). What it shows and the protocol are documented in board.py.
// Python syncs columns, servers, jobs and summary; thumbnails come once as binary buffers ("images").
// The helpers el, fmt and sharedViews come from panel.js, put before this module.

const SHARED = (globalThis.__imagerankBoard ??= new Map());

function urlsOf(model) {
  return sharedViews(SHARED, model.get("board_id")); // every view of one board shares its thumbnails
}

function initialize({ model }) {
  const s = urlsOf(model);
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type !== "images") return;
    msg.ids.forEach((id, k) => {
      if (s.urls.has(id)) URL.revokeObjectURL(s.urls.get(id));
      s.urls.set(id, URL.createObjectURL(new Blob([buffers[k]], { type: "image/jpeg" })));
    });
    for (const v of s.views) v();
  });
}

function render({ model, el: host }) {
  const s = urlsOf(model);
  const root = el("div", "imagerank-board ir-theme");
  const top = el("div", "ir-b-summary");
  const grid = el("div", "ir-b-columns");
  const lower = el("div", "ir-b-lower");
  const servers = el("div", "ir-b-servers");
  const queue = el("div", "ir-b-queue");
  lower.append(servers, queue);
  root.append(top, grid, lower);
  host.append(root);

  function paintSummary() {
    const m = model.get("summary") || {};
    const j = m.jobs || {};
    const runner = m.runner == null ? "no runner attached" : `runner ${m.runner}`;
    const rate = m.jobs_per_minute == null ? "" : ` · ${fmt(m.jobs_per_minute, 1)} jobs/min`;
    top.textContent = `${runner}${rate} · ${m.candidates || 0} candidates · jobs: ${j.queued || 0} queued, ` +
      `${(j.submitted || 0) + (j.running || 0)} on servers, ${j.done || 0} done, ${j.failed || 0} failed, ` +
      `${j.cancelled || 0} cancelled` + (m.error ? ` · ${m.error}` : "");
    top.classList.toggle("ir-b-error", !!m.error);
  }

  function paintColumns() {
    grid.replaceChildren();
    for (const c of model.get("columns")) {
      const col = el("section", "ir-b-col" + (c.is_final ? " ir-b-final" : ""));
      col.dataset.step = c.step;
      const h = el("header", "ir-b-colhead");
      h.append(el("span", "ir-b-step", c.step + (c.is_final ? " (final)" : "")),
        el("span", "ir-b-count", `${c.active} active · ${c.rejected} rejected · ${c.pending_jobs} pending`));
      const list = el("div", "ir-b-items");
      for (const it of c.items) {
        const fig = el("figure", `ir-b-item ir-b-${it.status}`);
        fig.dataset.imageId = it.id;
        fig.title = `#${it.id} ${it.name}` + (it.parent_id != null ? ` (child of #${it.parent_id})` : "") +
          ` · ${it.children} children · ${it.status}`;
        const url = s.urls.get(it.id);
        if (url) { const img = el("img"); img.src = url; img.alt = it.name; fig.append(img); }
        else fig.append(el("div", "ir-b-noimg", `#${it.id}`));
        fig.append(el("figcaption", null, `#${it.id} μ ${fmt(it.mu, 1)} σ ${fmt(it.sigma, 1)} · ${it.comparisons}v`));
        list.append(fig);
      }
      if (c.candidates > c.items.length) list.append(el("div", "ir-b-more", `+${c.candidates - c.items.length} more`));
      col.append(h, list);
      grid.append(col);
    }
  }

  function paintServers() {
    servers.replaceChildren(el("h4", null, "Servers"));
    const list = model.get("servers");
    if (!list.length) servers.append(el("div", "ir-b-dim", "no server has taken a job yet"));
    for (const sv of list) {
      const row = el("div", `ir-b-server ir-b-state-${sv.state}`);
      const prog = sv.progress ? ` ${Math.round((100 * sv.progress[0]) / Math.max(1, sv.progress[1]))}%` : "";
      const job = sv.job_id != null ? ` job ${sv.job_id} (${sv.step}${sv.node ? `, node ${sv.node}` : ""}${prog})` : "";
      row.textContent = `${sv.url}: ${sv.state}${job} · ${sv.done} done, ${sv.failed} failed` +
        (sv.error ? ` · ${sv.error}` : "");
      servers.append(row);
    }
  }

  function paintQueue() {
    queue.replaceChildren(el("h4", null, "Jobs"));
    const table = el("table", "ir-b-jobs");
    const head = el("tr");
    for (const t of ["job", "step", "parent", "status", "server", "tries", "s", "result"]) head.append(el("th", null, t));
    table.append(head);
    for (const j of model.get("jobs")) {
      const tr = el("tr", `ir-b-job ir-b-${j.status}`);
      for (const v of [j.id, j.step, j.parent_id ?? "–", j.status, j.server ?? "–", j.attempts, fmt(j.run_s, 1),
        j.image_id != null ? `#${j.image_id}` : (j.error || "")]) tr.append(el("td", null, String(v)));
      table.append(tr);
    }
    queue.append(table);
  }

  function paintAll() { paintSummary(); paintColumns(); paintServers(); paintQueue(); }
  s.views.add(paintColumns);
  model.on("change:summary", paintSummary);
  model.on("change:columns", paintColumns);
  model.on("change:servers", paintServers);
  model.on("change:jobs", paintQueue);
  paintAll();
  model.send({ type: "ready" });
  let timer = setInterval(() => model.send({ type: "poll" }), model.get("interval_ms"));
  model.on("change:interval_ms", () => {
    clearInterval(timer);
    timer = setInterval(() => model.send({ type: "poll" }), model.get("interval_ms"));
  });
  return () => { clearInterval(timer); s.views.delete(paintColumns); };
}

export default { initialize, render };
