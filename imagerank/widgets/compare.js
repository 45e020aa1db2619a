// imagerank compare panel (anywidget ESM). The protocol is documented in compare.py.
//
// The browser keeps the queued pairs (model trait "pairs") and their thumbnails (binary buffers from Python,
// held as object URLs). A key press advances locally, paints the next pair from already-decoded images, and
// then reports the vote; Python rates, persists and refills. Frontend state shared by every view of one panel
// in this page (pending votes, local undo, thumbnails) lives in SHARED, keyed by the model's panel_id.
//
// Best-of-N mode (model trait "group_size" 3 or 4; the N key cycles pairs -> 3 -> 4 -> pairs): the queued rounds
// are the trait "rounds"; 1..N pick the best of the round on screen, Shift+1..N marks the worst first. A round
// advances locally like a pair and is acknowledged when Python drops it from "rounds" (committed as one match).

const SHARED = (globalThis.__imagerankCompare ??= new Map());

const KEYS = {
  ArrowLeft: "left", "1": "left",
  ArrowRight: "right", "2": "right",
  s: "skip", S: "skip",
  d: "draw", D: "draw",
  u: "undo", U: "undo",
  r: "rescan", R: "rescan",
  f: "flag", F: "flag",
  n: "mode", N: "mode",
  Escape: "escape",
};
const VOTES = new Set(["left", "right", "draw", "skip"]);
const HISTORY_KEEP = 50;
const PAINTS_KEEP = 5000;
const PRELOAD = 3; // pairs after the current one whose images are decoded ahead

function sharedState(model) {
  const id = model.get("panel_id");
  let s = SHARED.get(id);
  if (!s) {
    s = {
      pending: new Set(), // pids voted in this page that Python has not dropped from "pairs" yet
      front: null, // a pair brought back by a local undo, shown before Python confirms it
      history: [], // pairs voted in this page, newest last
      urls: new Map(), // image id -> object URL of its thumbnail
      px: new Map(), // image id -> longest side of that thumbnail, pixels (a larger one replaces a smaller one)
      broken: new Set(), // ids whose thumbnail failed to decode here (replace the URL when it comes again)
      views: new Set(),
      rpending: new Set(), // best-of-N: rids voted in this page that Python has not dropped from "rounds" yet
      rfront: null, // a round brought back by a local undo
      rhistory: [], // rounds voted in this page, newest last
      kinds: [], // "pair" or "round" per local vote, newest last: what U takes back
      worst: null, // {rid, k}: the image marked worst (Shift+k) in the round on screen
    };
    SHARED.set(id, s);
  }
  return s;
}

function onCustom(model, msg, buffers) {
  const s = sharedState(model);
  if (msg.type === "images") {
    const fresh = [];
    const px = msg.px || 0;
    const sharper = [];
    msg.ids.forEach((id, k) => {
      const had = s.urls.has(id) && !s.broken.has(id);
      if (had && px <= (s.px.get(id) || 0)) return;
      const url = URL.createObjectURL(new Blob([buffers[k]], { type: msg.mime || "image/jpeg" }));
      s.px.set(id, px);
      if (had) { sharper.push([id, url]); return; } // swapped in once decoded (no flash of "loading")
      if (s.urls.has(id)) URL.revokeObjectURL(s.urls.get(id));
      s.broken.delete(id);
      s.urls.set(id, url);
      fresh.push(id);
    });
    for (const [id, url] of sharper) {
      const img = new Image();
      img.src = url;
      img.decode().then(() => {
        const old = s.urls.get(id);
        if (old == null) { URL.revokeObjectURL(url); return; } // pruned meanwhile
        s.urls.set(id, url);
        for (const v of s.views) v.onSharper(id, img);
        URL.revokeObjectURL(old);
      }, () => URL.revokeObjectURL(url)); // keep the smaller one
    }
    if (fresh.length) for (const v of s.views) v.onImages(fresh);
  } else if (msg.type === "undone" && "rid" in msg) { // a best-of-N round (rid null: not shown again)
    if (!s.rfront || s.rfront.rid !== msg.rid) s.rfront = null;
    for (const v of s.views) v.update(null);
  } else if (msg.type === "undone") {
    if (!s.front || s.front.pid !== msg.pid) s.front = null;
    for (const v of s.views) v.update(null);
  } else if (msg.type === "zoom" || msg.type === "zoom_error") {
    for (const v of s.views) v.onZoom(msg, buffers);
  }
}

// The pairs this page should show, front first: a locally undone pair, then Python's queue minus local votes.
function upcoming(model, s) {
  const out = s.front ? [s.front] : [];
  for (const p of model.get("pairs")) {
    if (s.pending.has(p.pid) || (s.front && p.pid === s.front.pid)) continue;
    out.push(p);
  }
  return out;
}

// The rounds this page should show, front first (as upcoming() for pairs).
function upcomingRounds(model, s) {
  const out = s.rfront ? [s.rfront] : [];
  for (const r of model.get("rounds") || []) {
    if (s.rpending.has(r.rid) || (s.rfront && r.rid === s.rfront.rid)) continue;
    out.push(r);
  }
  return out;
}

function prune(model, s) {
  const keep = new Set();
  const add = (p) => { keep.add(p.left.id); keep.add(p.right.id); };
  const addRound = (r) => r.images.forEach((i) => keep.add(i.id));
  (model.get("rounds") || []).forEach(addRound);
  if (s.rfront) addRound(s.rfront);
  s.rhistory.slice(-4).forEach(addRound);
  model.get("pairs").forEach(add);
  if (s.front) add(s.front);
  s.history.slice(-8).forEach(add);
  for (const t of model.get("top")) keep.add(t.id);
  for (const [id, url] of s.urls) {
    if (!keep.has(id)) { URL.revokeObjectURL(url); s.urls.delete(id); s.px.delete(id); }
  }
}

function fmt(x, d = 2) {
  return typeof x === "number" ? x.toFixed(d) : "–";
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function initialize({ model }) {
  sharedState(model);
  model.on("msg:custom", (msg, buffers) => onCustom(model, msg, buffers));
}

function render({ model, el: host }) {
  const s = sharedState(model);
  const root = el("div", "imagerank-compare");
  root.tabIndex = 0;
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.setAttribute("role", "application");
  root.setAttribute("aria-label",
    "Compare panel. Left arrow or 1: left wins. Right arrow or 2: right wins. S skip, D draw, U undo, " +
    "R rescan, F flag, N switches between pairs and best of 3 or 4 (then 1 to N picks the best, Shift with 1 to N " +
    "marks the worst first), Escape hands the keyboard back to the notebook.");
  root.irPaints = []; // {key, paint, ms, pid, ahead}: key press -> next pair painted (benchmarks read this)

  const header = el("div", "ir-header");
  const counts = el("span", "ir-counts");
  const stability = el("span", "ir-stability");
  const prior = el("span", "ir-prior");
  const keyhint = el("span", "ir-keyhint");
  header.append(counts, stability, prior, keyhint);

  const stage = el("div", "ir-stage");
  const sides = ["left", "right"].map((side) => {
    const fig = el("figure", `ir-side ir-${side}`);
    const slot = el("div", "ir-slot");
    slot.title = "click to see the original larger";
    const cap = el("figcaption", "ir-caption");
    const name = el("span", "ir-name");
    const stats = el("span", "ir-stats");
    cap.append(name, stats);
    fig.append(slot, cap);
    stage.append(fig);
    return { side, fig, slot, name, stats, id: null };
  });
  const wait = el("div", "ir-wait", "Waiting for the next pair…");
  stage.append(wait);

  const buttons = el("div", "ir-buttons");
  const BUTTONS = [
    ["left", "← Left wins", "← or 1"], ["draw", "Draw", "D"], ["skip", "Skip", "S"],
    ["right", "Right wins →", "→ or 2"], ["undo", "Undo", "U"], ["flag", "Flag", "F"], ["rescan", "Rescan", "R"],
    ["mode", "Best of 3", "N"],
  ];
  const buttonEls = {};
  for (const [action, label, key] of BUTTONS) {
    const b = el("button", `ir-btn ir-btn-${action}`);
    b.type = "button";
    b.tabIndex = -1; // the keys are the keyboard interface: Tab leaves the panel instead of stopping on a button
    b.append(el("span", "ir-btn-label", label), el("kbd", null, key));
    b.addEventListener("click", (e) => {
      e.preventDefault();
      act(action, performance.now());
      root.focus({ preventScroll: true });
    });
    buttonEls[action] = b;
    buttons.append(b);
  }

  const statusLine = el("div", "ir-status");
  const topStrip = el("div", "ir-top");
  const topTitle = el("span", "ir-top-title", "Top 10");
  const topList = el("ol", "ir-top-list");
  topStrip.append(topTitle, topList);

  // Best-of-N rounds: up to four figures in a row (shown instead of the pair's stage while group_size > 2).
  const rstage = el("div", "ir-rstage");
  const rsides = [0, 1, 2, 3].map((k) => {
    const fig = el("figure", "ir-round-side");
    fig.dataset.pos = String(k);
    const slot = el("div", "ir-slot");
    slot.title = "click to see the original larger";
    const cap = el("figcaption", "ir-caption");
    const pick = el("button", "ir-pick", String(k + 1));
    pick.type = "button";
    pick.tabIndex = -1;
    pick.title = `${k + 1}: the best of this round · Shift+${k + 1} (or Shift+click): the worst`;
    const name = el("span", "ir-name");
    const stats = el("span", "ir-stats");
    cap.append(pick, name, stats);
    fig.append(slot, cap);
    rstage.append(fig);
    return { fig, slot, name, stats, pick, id: null };
  });
  rstage.append(el("div", "ir-wait", "Waiting for the next round…"));
  const roundHint = el("span", "ir-round-hint");
  buttons.append(roundHint);

  root.append(header, stage, rstage, buttons, statusLine, topStrip);
  host.append(root);

  // Full-window view of one original, outside the notebook's containment so it can cover the window.
  const zoom = el("div", "imagerank-zoom");
  zoom.hidden = true;
  const zoomImg = el("img", "ir-zoom-img");
  zoomImg.alt = "";
  const zoomCap = el("div", "ir-zoom-caption");
  zoom.append(zoomImg, zoomCap);
  document.body.append(zoom);
  let zoomId = null;
  let zoomUrl = null;

  // ------------------------------------------------------------------ images
  const els = new Map(); // image id -> {img, ok: boolean | null, ready: Promise<boolean>}

  function imageEl(id) {
    let e = els.get(id);
    if (e) return e;
    const url = s.urls.get(id);
    if (!url) return null;
    const img = new Image();
    img.className = "ir-img";
    img.alt = "";
    img.draggable = false;
    img.src = url;
    e = { img, ok: null, ready: null };
    e.ready = img.decode().then(
      () => (e.ok = true),
      () => {
        e.ok = false;
        els.delete(id);
        s.broken.add(id);
        model.send({ type: "broken", id });
        return false;
      },
    );
    els.set(id, e);
    return e;
  }

  // A sharper thumbnail arrived (already decoded): use it for this id, on screen at once if it is shown.
  function onSharper(id, decoded) {
    const e = els.get(id);
    if (!e) return;
    const img = decoded.cloneNode();
    img.className = "ir-img";
    img.alt = "";
    img.draggable = false;
    for (const side of [...sides, ...rsides]) if (side.slot.firstChild === e.img) side.slot.replaceChildren(img);
    e.img = img;
  }

  function dropStaleEls() {
    for (const [id, e] of els) {
      if (s.urls.get(id) !== e.img.src) els.delete(id);
    }
  }

  // ------------------------------------------------------------------ layout
  // The slots are sized to the space the panel has and to the images: the panel (header to top strip) fits the
  // notebook's visible height (Voilà: the window's), each slot takes its image's aspect ratio within half the
  // width, and both share the height of the taller one. "chrome" (everything but the slots) is measured only
  // when sizes change (ResizeObserver), never on the key-press path; placing a pair is arithmetic.
  const GAP = 10;
  const MIN_SLOT = 120;
  let aspects = [4 / 3, 4 / 3];
  let chrome = null;
  let lastSizes = "";

  function viewportHeight() {
    const sc = host.closest(".jp-WindowedPanel-outer") || host.closest(".jp-Notebook");
    const h = sc ? sc.clientHeight : window.innerHeight;
    return Math.max(MIN_SLOT * 2, Math.min(h || window.innerHeight, window.innerHeight));
  }

  function measure() {
    const slotH = (roundMode() ? rsides[0] : sides[0]).slot.offsetHeight;
    chrome = root.offsetHeight - slotH;
    layout();
  }

  function layout() {
    if (chrome == null) return;
    if (roundMode()) { layoutRound(); return; }
    const bw = Math.max(MIN_SLOT / 2, (stage.clientWidth - GAP) / 2);
    const bh = Math.max(MIN_SLOT, viewportHeight() - chrome - 12);
    const H = Math.round(Math.max(...aspects.map((a) => Math.min(bh, bw / a))));
    const widths = aspects.map((a) => Math.round(Math.min(bw, H * a)));
    const key = `${widths[0]}x${widths[1]}x${H}`;
    if (key === lastSizes) return;
    lastSizes = key;
    sides.forEach((side, k) => { side.slot.style.width = `${widths[k]}px`; side.slot.style.height = `${H}px`; });
    const px = Math.round(Math.max(H, ...widths) * (window.devicePixelRatio || 1));
    if (Math.abs(px - (model.get("thumb_px") || 0)) > 32) {
      model.set("thumb_px", px);
      model.save_changes();
    }
  }

  function setAspects(L, R) {
    const a = [L, R].map((e, k) => (e && e.img.naturalWidth && e.img.naturalHeight
      ? e.img.naturalWidth / e.img.naturalHeight : aspects[k]));
    if (a[0] !== aspects[0] || a[1] !== aspects[1]) { aspects = a; layout(); }
  }

  // ------------------------------------------------------------------ painting
  let shownPid = null;
  let shownAt = null;
  // The key press whose next pair is not painted yet ({t, pid, ahead}; pid null when the queue was empty; ahead:
  // pairs left in this page's queue at the key): the paint is attributed to it even when it had to wait for
  // thumbnails or for Python to refill the queue.
  let keyWait = null;

  function markPainted(pid) {
    // After the frame that shows the new images: rAF runs before paint, the message task right after it.
    requestAnimationFrame(() => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        const t = performance.now();
        if (shownPid === pid) shownAt = t;
        if (keyWait && (keyWait.pid === pid || keyWait.pid === null)) {
          root.irPaints.push({ key: keyWait.t, paint: t, ms: t - keyWait.t, pid, ahead: keyWait.ahead });
          if (root.irPaints.length > PAINTS_KEEP) root.irPaints.shift();
          keyWait = null;
        }
      };
      ch.port2.postMessage(0);
    });
  }

  // At 0 comparisons every rating is the same: no μ/σ/n and no top-10 strip to anchor on.
  function scored() {
    return ((model.get("header") || {}).comparisons || 0) > 0;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text; // an unchanged caption costs no layout
  }

  function caption(side, img) {
    setText(side.name, img.name);
    if (side.name.title !== img.name) side.name.title = img.name;
    setText(side.stats, model.get("blind") || img.mu == null || !scored()
      ? ""
      : `μ ${fmt(img.mu)}  σ ${fmt(img.sigma)}  n ${img.n}`);
  }

  // Work that is not the next pair (header counts, the top-10 strip) waits until the browser is idle, so a
  // model update arriving between a key press and its paint never delays that paint. At most 250 ms late.
  const pendingWork = new Set();
  let idleHandle = null;
  function offKeyPath(fn) {
    pendingWork.add(fn);
    if (idleHandle != null) return;
    const run = () => {
      idleHandle = null;
      const work = [...pendingWork];
      pendingWork.clear();
      for (const f of work) f();
    };
    idleHandle = typeof requestIdleCallback === "function"
      ? requestIdleCallback(run, { timeout: 250 }) : setTimeout(run, 50);
  }

  function place(p) {
    const L = imageEl(p.left.id);
    const R = imageEl(p.right.id);
    sides.forEach((side, k) => {
      const e = k === 0 ? L : R;
      side.id = (k === 0 ? p.left : p.right).id;
      if (e && e.ok) {
        if (side.slot.firstChild !== e.img) side.slot.replaceChildren(e.img);
        side.slot.classList.remove("ir-loading");
      } else {
        side.slot.replaceChildren();
        side.slot.classList.add("ir-loading");
      }
    });
    if (L && R && L.ok && R.ok) {
      setAspects(L, R);
      markPainted(p.pid);
      return;
    }
    if (L && R && L.ok !== false && R.ok !== false) {
      Promise.all([L.ready, R.ready]).then(() => { if (shownPid === p.pid) place(p); });
    }
  }

  function update(tKey) {
    if (roundMode()) { updateRound(tKey); return; }
    const list = upcoming(model, s);
    const cur = list[0];
    stage.classList.toggle("ir-empty", !cur);
    if (!cur) {
      if (tKey != null) keyWait = { t: tKey, pid: null, ahead: 0 };
      shownPid = null;
      delete root.dataset.pid;
      sides.forEach((side) => {
        side.slot.replaceChildren(); side.name.textContent = ""; side.stats.textContent = ""; side.id = null;
        delete side.fig.dataset.imageId;
      });
      return;
    }
    caption(sides[0], cur.left);
    caption(sides[1], cur.right);
    root.dataset.pid = String(cur.pid); // for tests and tools: what is on screen
    sides[0].fig.dataset.imageId = String(cur.left.id);
    sides[1].fig.dataset.imageId = String(cur.right.id);
    if (cur.pid !== shownPid || sides[0].id !== cur.left.id || !sides[0].slot.firstChild || !sides[1].slot.firstChild) {
      if (cur.pid !== shownPid) shownAt = null;
      shownPid = cur.pid;
      if (tKey != null) keyWait = { t: tKey, pid: cur.pid, ahead: list.length };
      place(cur);
    }
    for (const p of list.slice(1, 1 + PRELOAD)) { imageEl(p.left.id); imageEl(p.right.id); }
  }

  function onImages(ids) {
    dropStaleEls();
    const cur = upcoming(model, s)[0];
    if (cur && (ids.includes(cur.left.id) || ids.includes(cur.right.id))) shownPid = null;
    update(null);
    if ((model.get("top") || []).some((t) => ids.includes(t.id))) renderTop();
  }

  // ------------------------------------------------------------------ actions
  function say(text, level = "info") {
    statusLine.textContent = text;
    statusLine.dataset.level = level;
  }

  function act(action, tKey) {
    if (action === "escape") {
      if (zoomId != null) closeZoom();
      else release();
      return;
    }
    if (zoomId != null && action !== "flag") closeZoom();
    if (action === "mode") { switchMode(); return; }
    if (roundMode() && (VOTES.has(action) || (action === "flag" && zoomId == null))) { actRound(action, tKey); return; }
    if (action === "undo" && s.kinds.length && s.kinds[s.kinds.length - 1] === "round") { undoRound(tKey); return; }
    const cur = upcoming(model, s)[0];
    if (VOTES.has(action)) {
      if (!cur) { say("no pair to judge yet", "warning"); return; }
      const ms = shownAt != null ? Math.max(0, tKey - shownAt) : null;
      if (statusLine.textContent) say(""); // the last message was about the last action
      s.pending.add(cur.pid);
      if (s.front && s.front.pid === cur.pid) s.front = null;
      s.history.push(cur);
      if (s.history.length > HISTORY_KEEP) s.history.shift();
      pushKind("pair");
      for (const v of s.views) v.update(v === view ? tKey : null);
      model.send({ type: "vote", pid: cur.pid, left: cur.left.id, right: cur.right.id, outcome: action, ms });
    } else if (action === "undo") {
      const last = s.history.pop();
      s.kinds.pop();
      if (last) { s.pending.delete(last.pid); s.front = last; }
      for (const v of s.views) v.update(v === view ? tKey : null);
      model.send({ type: "undo" });
    } else if (action === "rescan") {
      say("rescanning the image folders…");
      model.send({ type: "rescan" });
    } else if (action === "flag") {
      const id = zoomId;
      if (id != null) model.send({ type: "flag", ids: [id] });
      else if (cur) model.send({ type: "flag", pid: cur.pid });
    }
  }

  // ------------------------------------------------------------------ best-of-N rounds
  // The same contract as pairs: a key advances locally at once (the next round paints from decoded images), the
  // round is reported with its ids as shown, and it stays "pending" until Python drops it from "rounds" (committed).
  let shownRid = null;
  let markedRid = null; // the round whose first full paint set roundShownAt
  let roundShownAt = null;
  let layoutN = 3;
  const raspects = [4 / 3, 4 / 3, 4 / 3, 4 / 3];

  function roundMode() {
    return (model.get("group_size") || 2) > 2;
  }

  function pushKind(kind) {
    s.kinds.push(kind);
    if (s.kinds.length > 2 * HISTORY_KEEP) s.kinds.shift();
  }

  // Mode switch (N key, the mode button, or group_size set from Python): the key help follows the mode.
  function applyMode() {
    const n = model.get("group_size") || 2;
    const rounds = n > 2;
    root.classList.toggle("ir-rounds", rounds);
    root.dataset.mode = rounds ? `best-of-${n}` : "pairs";
    const next = n === 2 ? "Best of 3" : n === 3 ? "Best of 4" : "Pairs";
    buttonEls.mode.querySelector(".ir-btn-label").textContent = next;
    buttonEls.mode.title = `N: switch to ${next.toLowerCase()}`;
    roundHint.textContent = rounds ? `1–${n} the best · Shift+1–${n} marks the worst first` : "";
    if (!rounds) s.worst = null;
    delete root.dataset[rounds ? "pid" : "rid"]; // what is on screen is the other mode's item now
    layoutN = n;
    lastSizes = "";
    shownRid = null;
    if (chrome != null) measure();
    update(null);
  }

  function switchMode() {
    const n = model.get("group_size") || 2;
    const next = n === 2 ? 3 : n === 3 ? 4 : 2;
    say(next > 2 ? `switching to best of ${next}…` : "switching to pairs…");
    model.send({ type: "mode", size: next });
  }

  // A digit key in best-of-N mode (by e.code, so Shift+1 is still "1" on any layout): true when handled.
  function roundKey(e) {
    const m = /^(?:Digit|Numpad)([1-9])$/.exec(e.code || "");
    const k = m ? Number(m[1]) : /^[1-9]$/.test(e.key) ? Number(e.key) : null;
    if (k == null) {
      if (["ArrowLeft", "ArrowRight", "d", "D"].includes(e.key)) {
        e.preventDefault();
        if (!e.repeat) actRound(e.key.startsWith("Arrow") ? "left" : "draw", e.timeStamp);
        return true;
      }
      return false;
    }
    e.preventDefault();
    if (e.repeat) return true; // holding a key must not cast a stream of votes
    if (e.shiftKey) markWorst(k - 1); else pickBest(k - 1, e.timeStamp);
    return true;
  }

  function frontRound(k) {
    const cur = upcomingRounds(model, s)[0];
    if (!cur) { say("no round to judge yet", "warning"); return null; }
    const n = cur.images.length;
    if (k >= n) { say(`this round has ${n} images: keys 1–${n}`, "warning"); return null; }
    return cur;
  }

  function pickBest(k, tKey) {
    const cur = frontRound(k);
    if (!cur) return;
    const worst = s.worst && s.worst.rid === cur.rid ? s.worst.k : null;
    if (worst === k) {
      say(`image ${k + 1} is marked worst: pick another as the best (Shift+${k + 1} unmarks it)`, "warning");
      return;
    }
    sendRound(cur, { best: k, worst, outcome: "best" }, tKey);
  }

  function markWorst(k) {
    const cur = frontRound(k);
    if (!cur) return;
    const same = s.worst && s.worst.rid === cur.rid && s.worst.k === k;
    s.worst = same ? null : { rid: cur.rid, k };
    for (const v of s.views) v.update(null);
  }

  function sendRound(cur, judgement, tKey) {
    const ms = roundShownAt != null && markedRid === cur.rid ? Math.max(0, tKey - roundShownAt) : null;
    if (statusLine.textContent) say(""); // the last message was about the last action
    s.rpending.add(cur.rid);
    if (s.rfront && s.rfront.rid === cur.rid) s.rfront = null;
    s.rhistory.push(cur);
    if (s.rhistory.length > HISTORY_KEEP) s.rhistory.shift();
    pushKind("round");
    s.worst = null;
    for (const v of s.views) v.update(v === view ? tKey : null);
    model.send({ type: "round", rid: cur.rid, ids: cur.images.map((i) => i.id), ...judgement, ms });
  }

  function actRound(action, tKey) {
    const cur = upcomingRounds(model, s)[0];
    if (action === "flag") {
      if (cur) model.send({ type: "flag", ids: cur.images.map((i) => i.id) });
      return;
    }
    if (!cur) { say("no round to judge yet", "warning"); return; }
    if (action === "skip") { sendRound(cur, { best: null, worst: null, outcome: "skip" }, tKey); return; }
    const n = cur.images.length;
    say(`${action === "draw" ? "D (draw)" : "← / →"} is for pairs: 1–${n} picks the best of these ${n}, ` +
      "N switches the mode", "warning");
  }

  function undoRound(tKey) {
    s.kinds.pop();
    const last = s.rhistory.pop();
    if (last) { s.rpending.delete(last.rid); s.rfront = last; }
    s.worst = null;
    for (const v of s.views) v.update(v === view ? tKey : null);
    model.send({ type: "undo" });
  }

  function layoutRound() {
    const n = layoutN;
    const bw = Math.max(MIN_SLOT / 2, (rstage.clientWidth - GAP * (n - 1)) / n);
    const bh = Math.max(MIN_SLOT, viewportHeight() - chrome - 12);
    const as = raspects.slice(0, n);
    const H = Math.round(Math.max(...as.map((a) => Math.min(bh, bw / a))));
    const widths = as.map((a) => Math.round(Math.min(bw, H * a)));
    const key = `r${n}:${widths.join("x")}x${H}`;
    if (key === lastSizes) return;
    lastSizes = key;
    rsides.forEach((side, k) => {
      if (k >= n) return;
      side.slot.style.width = `${widths[k]}px`;
      side.slot.style.height = `${H}px`;
    });
    const px = Math.round(Math.max(H, ...widths) * (window.devicePixelRatio || 1));
    if (Math.abs(px - (model.get("thumb_px") || 0)) > 32) {
      model.set("thumb_px", px);
      model.save_changes();
    }
  }

  function setRoundAspects(es) {
    let changed = false;
    es.forEach((e, k) => {
      const a = e.img.naturalWidth && e.img.naturalHeight ? e.img.naturalWidth / e.img.naturalHeight : raspects[k];
      if (a !== raspects[k]) { raspects[k] = a; changed = true; }
    });
    if (changed) layout();
  }

  function markRoundShown(rid) {
    markedRid = rid;
    roundShownAt = null;
    requestAnimationFrame(() => { // after the frame that shows the round (as markPainted for pairs)
      const ch = new MessageChannel();
      ch.port1.onmessage = () => { if (markedRid === rid) roundShownAt = performance.now(); };
      ch.port2.postMessage(0);
    });
  }

  function placeRound(r) {
    const es = r.images.map((i) => imageEl(i.id));
    es.forEach((e, k) => {
      const side = rsides[k];
      if (e && e.ok) {
        if (side.slot.firstChild !== e.img) side.slot.replaceChildren(e.img);
        side.slot.classList.remove("ir-loading");
      } else {
        side.slot.replaceChildren();
        side.slot.classList.add("ir-loading");
      }
    });
    if (es.every((e) => e && e.ok)) {
      setRoundAspects(es);
      if (markedRid !== r.rid) markRoundShown(r.rid);
      return;
    }
    if (es.every((e) => e && e.ok !== false)) {
      Promise.all(es.map((e) => e.ready)).then(() => { if (shownRid === r.rid) placeRound(r); });
    }
  }

  function updateRound() {
    const list = upcomingRounds(model, s);
    const cur = list[0];
    rstage.classList.toggle("ir-empty", !cur);
    if (!cur) {
      shownRid = null;
      delete root.dataset.rid;
      rsides.forEach((side) => {
        side.slot.replaceChildren(); side.name.textContent = ""; side.stats.textContent = ""; side.id = null;
        delete side.fig.dataset.imageId;
        side.fig.classList.remove("ir-worst");
      });
      return;
    }
    const n = cur.images.length;
    const worst = s.worst && s.worst.rid === cur.rid ? s.worst.k : null;
    root.dataset.rid = String(cur.rid); // for tests and tools: what is on screen
    root.dataset.worst = worst == null ? "" : String(worst);
    rsides.forEach((side, k) => {
      const img = cur.images[k];
      side.fig.style.display = img ? "" : "none";
      side.fig.classList.toggle("ir-worst", worst === k);
      if (!img) { side.id = null; delete side.fig.dataset.imageId; return; }
      caption(side, img);
      side.fig.dataset.imageId = String(img.id);
      side.id = img.id;
    });
    if (cur.rid !== shownRid) {
      shownRid = cur.rid;
      if (layoutN !== n) { layoutN = n; lastSizes = ""; layout(); }
    }
    placeRound(cur);
    for (const r of list.slice(1, 1 + PRELOAD)) r.images.forEach((i) => imageEl(i.id));
  }

  function onRounds() {
    const rounds = model.get("rounds") || [];
    const rids = new Set(rounds.map((r) => r.rid));
    for (const rid of [...s.rpending]) if (!rids.has(rid)) s.rpending.delete(rid);
    if (s.rfront && rounds[0] && rounds[0].rid === s.rfront.rid) s.rfront = null;
    if (s.worst && !rids.has(s.worst.rid)) s.worst = null;
    prune(model, s);
    dropStaleEls();
    update(null);
  }

  // ------------------------------------------------------------------ zoom (the original, on demand)
  function openZoom(id) {
    if (id == null) return;
    zoomId = id;
    const url = s.urls.get(id);
    if (url) zoomImg.src = url;
    const name = [...sides, ...rsides].find((x) => x.id === id)?.name.textContent || "";
    zoomCap.textContent = `${name} — loading the original…  (Esc or click to close, F flags it)`;
    zoom.hidden = false;
    const dpr = window.devicePixelRatio || 1;
    model.send({
      type: "zoom", id,
      width: Math.round(window.innerWidth * dpr * 0.96), height: Math.round(window.innerHeight * dpr * 0.92),
    });
  }

  function closeZoom() {
    zoom.hidden = true;
    zoomId = null;
    zoomImg.removeAttribute("src");
    if (zoomUrl) { URL.revokeObjectURL(zoomUrl); zoomUrl = null; }
  }

  function onZoom(msg, buffers) {
    if (zoomId !== msg.id) return;
    if (msg.type === "zoom_error") {
      zoomCap.textContent = `cannot load the original: ${msg.reason}`;
      return;
    }
    if (zoomUrl) URL.revokeObjectURL(zoomUrl);
    zoomUrl = URL.createObjectURL(new Blob([buffers[0]], { type: "image/jpeg" }));
    zoomImg.src = zoomUrl;
    const [w, h] = msg.original || [];
    zoomCap.textContent = `${msg.name}  ${w}×${h}  (Esc or click to close, F flags it)`;
  }

  zoom.addEventListener("click", () => { closeZoom(); root.focus({ preventScroll: true }); });
  sides.forEach((side) => side.slot.addEventListener("click", () => openZoom(side.id)));
  rsides.forEach((side, k) => {
    side.slot.addEventListener("click", () => openZoom(side.id));
    side.pick.addEventListener("click", (e) => {
      e.preventDefault();
      if (e.shiftKey) markWorst(k); else pickBest(k, performance.now());
      root.focus({ preventScroll: true });
    });
  });

  // ------------------------------------------------------------------ header, status, top strip
  let wasScored = null;
  function renderHeader() {
    const h = model.get("header") || {};
    if (scored() !== wasScored) {
      wasScored = scored();
      const cur = upcoming(model, s)[0];
      if (cur) { caption(sides[0], cur.left); caption(sides[1], cur.right); }
      renderTop();
    }
    const n = (x) => (x ?? 0).toLocaleString("en-US");
    counts.textContent =
      `${n(h.votes)} vote${h.votes === 1 ? "" : "s"} this session (${n(h.skips)} skipped) · ` +
      `${n(h.comparisons)} comparison${h.comparisons === 1 ? "" : "s"} in all · ` +
      `${n(h.active)} of ${n(h.images)} images active · ${n(h.missing)} missing · ${n(h.corrupt)} corrupt`;
    const pct = 100 * (h.stability ?? 0);
    const post = (h.rating_model || "").startsWith("consistent judge");  // Collection.rating_model
    stability.textContent = h.stability == null ? "" :
      `top-${h.k} stability ${pct >= 10 ? pct.toFixed(0) : pct.toFixed(1)}%` + (post ? " · full posterior" : "");
    stability.title =
      `Expected share of the current top-${h.k} (by ${post ? "posterior μ − σ" : "μ − 3σ"}) that stays ` +
      `top-${h.k} under the rating posterior (an estimate of precision@k). Near k/N before any vote; 100% when ` +
      "the top is settled." + (h.rating_model ? ` Ranking: ${h.rating_model}.` : "");
    const why = (h.prior || "").startsWith("no learned prior:");
    const off = (h.prior || "").match(/taste prior off: ([^(;]*)/);  // switched off: say why, details in the title
    prior.textContent = h.prior_confidence != null ? `taste prior r ${h.prior_confidence.toFixed(2)}` :
      off ? `taste prior off: ${off[1].trim()}` : why ? "no taste prior yet" : "";
    prior.title = h.prior || "";
  }

  function renderStatus() {
    const st = model.get("status") || {};
    say(st.text || "", st.level || "info");
  }

  // The strip changes every few votes; rebuild it only then (and fill in thumbnails as they arrive), off the
  // key-press path: decoding="async" keeps its decodes off the main thread.
  let topKey = "";
  function renderTop() {
    const top = model.get("top") || [];
    topStrip.hidden = model.get("blind");
    topStrip.style.visibility = top.length === 0 || !scored() ? "hidden" : ""; // keeps its place: no jump
    const key = top.map((t) => `${t.id}:${t.rank}:${t.ordinal}:${s.urls.has(t.id) ? 1 : 0}`).join(",");
    if (key === topKey) return;
    topKey = key;
    topList.replaceChildren(...top.map((t) => {
      const li = el("li", "ir-top-item");
      li.title = `#${t.rank} ${t.name}  (μ − 3σ = ${fmt(t.ordinal)})`;
      const url = s.urls.get(t.id);
      if (url) {
        const img = el("img");
        img.decoding = "async";
        img.src = url;
        img.alt = t.name;
        li.append(img);
      }
      li.append(el("span", "ir-top-rank", String(t.rank)));
      return li;
    }));
  }

  function onPairs() {
    const pids = new Set(model.get("pairs").map((p) => p.pid));
    for (const pid of [...s.pending]) if (!pids.has(pid)) s.pending.delete(pid);
    const first = model.get("pairs")[0];
    if (s.front && first && first.pid === s.front.pid) s.front = null;
    prune(model, s);
    dropStaleEls();
    update(null);
  }

  function onTop() {
    prune(model, s);
    renderTop();
  }

  // The hint says where the keys go: to the panel exactly while the panel itself has the focus.
  function onFocus() {
    keyhint.textContent = "⌨ keys go to this panel · Esc releases them";
    root.classList.add("ir-focused");
  }
  function onBlur() {
    keyhint.textContent = "click the panel to vote with the keyboard";
    root.classList.remove("ir-focused");
  }

  // Esc: the keys go back to the notebook, in command mode on the panel's cell (JupyterLab's own keys work at
  // once); outside JupyterLab (Voilà) the page gets them.
  function release() {
    const cell = host.closest(".jp-Cell");
    const nb = host.closest(".jp-Notebook");
    root.blur();
    const target = cell || nb;
    if (target) {
      if (!target.hasAttribute("tabindex")) target.tabIndex = -1;
      target.focus({ preventScroll: true });
    }
  }

  // ------------------------------------------------------------------ keyboard and focus
  function onKeyDown(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) {
      // Modified keys belong to JupyterLab and the browser: lift the shortcut suppression for this event only.
      root.removeAttribute("data-lm-suppress-shortcuts");
      setTimeout(() => root.setAttribute("data-lm-suppress-shortcuts", "true"), 0);
      return;
    }
    e.stopPropagation(); // plain keys never reach JupyterLab
    if (e.target !== root) { // a key on something inside (a focused button): nothing, and no click from Enter
      if (e.key === "Enter" || e.key === " ") e.preventDefault();
      return;
    }
    if (roundMode() && roundKey(e)) return;
    const action = KEYS[e.key];
    if (!action) {
      if (e.key === " " || e.key.startsWith("Arrow") || e.key === "PageDown" || e.key === "PageUp") e.preventDefault();
      return;
    }
    e.preventDefault();
    if (e.repeat && action !== "escape") return; // holding a key must not cast a stream of votes
    act(action, e.timeStamp);
  }

  function stopPlain(e) {
    if (!(e.ctrlKey || e.metaKey || e.altKey)) e.stopPropagation();
  }

  function onMouseDown(e) {
    if (e.button !== 0) return;
    if (!e.target.closest("button")) e.preventDefault(); // keep focus here, no text selection
    root.focus({ preventScroll: true });
  }

  root.addEventListener("keydown", onKeyDown);
  root.addEventListener("keyup", stopPlain);
  root.addEventListener("keypress", stopPlain);
  root.addEventListener("mousedown", onMouseDown);
  root.addEventListener("focus", onFocus);
  root.addEventListener("blur", onBlur);

  const view = { update, onImages, onZoom, onSharper };
  s.views.add(view);
  model.on("change:pairs", onPairs);
  model.on("change:header", () => offKeyPath(renderHeader));
  model.on("change:status", renderStatus);
  model.on("change:top", () => offKeyPath(onTop));
  model.on("change:blind", () => { update(null); renderTop(); });
  model.on("change:rounds", onRounds);
  model.on("change:group_size", applyMode);

  const resize = new ResizeObserver(() => { lastSizes = ""; measure(); });
  resize.observe(root);
  const scrollerEl = host.closest(".jp-WindowedPanel-outer") || host.closest(".jp-Notebook");
  if (scrollerEl) resize.observe(scrollerEl);
  const onWindowResize = () => { lastSizes = ""; layout(); };
  window.addEventListener("resize", onWindowResize);

  onBlur();
  applyMode();
  renderHeader();
  renderStatus();
  renderTop();
  update(null);
  model.send({ type: "ready" }); // Python sends thumbnails only to a page that is listening

  return () => {
    s.views.delete(view);
    if (idleHandle != null) {
      if (typeof cancelIdleCallback === "function") cancelIdleCallback(idleHandle); else clearTimeout(idleHandle);
    }
    resize.disconnect();
    window.removeEventListener("resize", onWindowResize);
    closeZoom();
    zoom.remove();
    root.removeEventListener("keydown", onKeyDown);
    root.removeEventListener("keyup", stopPlain);
    root.removeEventListener("keypress", stopPlain);
    root.removeEventListener("mousedown", onMouseDown);
  };
}

export default { initialize, render };
