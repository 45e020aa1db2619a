// imagerank triage panel (anywidget ESM). The protocol and the keys are documented in triage.py.
//
// Python owns the question (model trait "question"); the browser paints it from thumbnails Python sent as binary
// buffers, and reports keys as actions naming the question's qid (an action for an older question is refused by
// Python, never applied to other images). Thumbnails are shared by every view of one panel (keyed by panel_id).
// The helpers el, sharedViews and takeKeys (the keyboard contract) come from panel.js, put before this module.

const SHARED = (globalThis.__imagerankTriage ??= new Map());

const KEYS = {
  ArrowLeft: "left", "1": "left",
  ArrowRight: "right", "2": "right",
  d: "draw", D: "draw",
  s: "skip", S: "skip",
  k: "kill", K: "kill",
  u: "undo", U: "undo", Backspace: "undo",
  Escape: "escape",
};
const POLL_MS = 2000;

function shared(model) {
  return sharedViews(SHARED, model.get("panel_id"));
}

function initialize({ model }) {
  const s = shared(model);
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type !== "images") return;
    msg.ids.forEach((id, k) => {
      if (s.urls.has(id)) URL.revokeObjectURL(s.urls.get(id));
      s.urls.set(id, URL.createObjectURL(new Blob([buffers[k]], { type: "image/jpeg" })));
    });
    for (const v of s.views) v.paint();
  });
}

function render({ model, el: host }) {
  const s = shared(model);
  const root = el("div", "imagerank-triage ir-theme ir-panel");
  root.setAttribute("aria-label",
    "Triage panel. Left arrow or 1: left is better. Right arrow or 2: right is better. D draw, S skip or stop " +
    "the walk, K then left or right arrow kills that candidate, U or Backspace undo, Escape releases the keyboard.");

  const header = el("div", "ir-t-header");
  const mode = el("span", "ir-t-mode");
  const where = el("span", "ir-t-where");
  const counts = el("span", "ir-t-counts");
  const keyhint = el("span", "ir-t-keyhint");
  header.append(mode, where, counts, keyhint);

  const stage = el("div", "ir-t-stage");
  const sides = ["left", "right"].map((side) => {
    const fig = el("figure", `ir-t-side ir-t-${side}`);
    const slot = el("div", "ir-t-slot");
    const cap = el("figcaption", "ir-t-caption");
    fig.append(slot, cap);
    stage.append(fig);
    return { side, fig, slot, cap };
  });
  const empty = el("div", "ir-t-empty");
  stage.append(empty);

  const armed = el("div", "ir-t-armed", "Kill which? ← left · → right · Esc cancels");
  armed.hidden = true;
  const statusLine = el("div", "ir-t-status");
  root.append(header, stage, armed, statusLine);
  host.append(root);

  let killArmed = false;
  let shownAt = performance.now();
  let lastQid = null;
  let poll = null;

  function setArmed(on) {
    killArmed = on;
    armed.hidden = !on;
    root.classList.toggle("ir-t-killing", on);
  }

  function paint() {
    const q = model.get("question") || {};
    root.dataset.qid = q.qid ?? "";
    root.dataset.kind = q.kind || "";
    if (q.qid !== lastQid) {
      lastQid = q.qid;
      shownAt = performance.now();
      setArmed(false);
    }
    const hasAny = q.kind === "pair" || q.kind === "walk";
    stage.classList.toggle("ir-t-walk", q.kind === "walk");
    empty.hidden = hasAny;
    empty.textContent = hasAny ? "" : (q.text || "Nothing to triage yet.");
    for (const side of sides) {
      const info = q.sides && q.sides[side.side];
      side.fig.hidden = !hasAny;
      side.fig.dataset.imageId = info ? info.id : "";
      side.fig.classList.toggle("ir-t-suspect", q.kind === "walk" && side.side === "left");
      side.fig.classList.toggle("ir-t-rejected", !!info && info.status === "rejected");
      side.slot.replaceChildren();
      side.cap.replaceChildren();
      if (!info) {
        if (hasAny) side.slot.append(el("div", "ir-t-none", q.kind === "walk" ? "no sibling to compare" : ""));
        continue;
      }
      const url = s.urls.get(info.id);
      if (url) {
        const img = el("img", "ir-t-img");
        img.src = url;
        img.alt = info.name;
        img.draggable = false;
        side.slot.append(img);
      } else {
        side.slot.append(el("div", "ir-t-none", "loading…"));
      }
      const role = q.kind === "walk" ? (side.side === "left" ? "suspect" : "sibling") : side.side;
      side.cap.append(
        el("span", "ir-t-role", role),
        el("span", "ir-t-name", `#${info.id} ${info.step}`),
        el("span", "ir-t-stats",
          `μ ${info.mu.toFixed(1)} σ ${info.sigma.toFixed(1)} · ${info.comparisons} votes` +
          (info.status !== "active" ? ` · ${info.status}` : "")),
      );
    }
    if (!hasAny && poll === null) poll = setInterval(() => model.send({ type: "poll" }), POLL_MS);
    if (hasAny && poll !== null) { clearInterval(poll); poll = null; }
  }

  function renderHeader() {
    const h = model.get("header") || {};
    mode.textContent = h.mode === "walk" ? "Walk left" : h.mode === "pair" ? "Triage" : "Waiting";
    mode.className = `ir-t-mode ir-t-mode-${h.mode || "done"}`;
    where.textContent = h.text || "";
    const n = (k, w) => `${k || 0} ${w}${k === 1 ? "" : "s"}`;
    counts.textContent = `${n(h.votes, "vote")} · ${n(h.kills, "kill")}` + (h.can_undo ? " · U undoes" : "");
  }

  function renderStatus() {
    const st = model.get("status") || {};
    statusLine.textContent = st.text || "";
    statusLine.className = `ir-t-status ir-t-${st.level || "info"}`;
  }

  function act(action, stamp) {
    const q = model.get("question") || {};
    if (action === "escape") {
      if (killArmed) setArmed(false);
      else root.blur();
      return;
    }
    if (action === "undo") { setArmed(false); model.send({ type: "undo" }); return; }
    if (action === "kill") { if (q.kind === "pair" || q.kind === "walk") setArmed(!killArmed); return; }
    if (killArmed && (action === "left" || action === "right")) {
      setArmed(false);
      const id = q[action];
      if (id != null) model.send({ type: "kill", qid: q.qid, id });
      return;
    }
    setArmed(false);
    if (q.kind === "walk" && (action === "skip" || q.right == null)) {
      if (action === "skip") model.send({ type: "stop", qid: q.qid });
      return;
    }
    if (q.kind !== "pair" && q.kind !== "walk") return;
    model.send({ type: "vote", qid: q.qid, outcome: action, ms: Math.max(0, Math.round(stamp - shownAt)) });
  }

  function onFocus() {
    keyhint.textContent = "⌨ keys go here · Esc releases them";
    root.classList.add("ir-focused");
  }
  function onBlur() {
    keyhint.textContent = "click the panel to triage with the keyboard";
    root.classList.remove("ir-focused");
    setArmed(false);
  }

  const detachKeys = takeKeys(root, { keys: KEYS, act, focused: onFocus, blurred: onBlur, scrollKeys: true });

  const view = { paint };
  s.views.add(view);
  model.on("change:question", paint);
  model.on("change:header", renderHeader);
  model.on("change:status", renderStatus);
  onBlur();
  renderHeader();
  renderStatus();
  paint();
  model.send({ type: "ready" });

  return () => {
    s.views.delete(view);
    if (poll !== null) clearInterval(poll);
    detachKeys();
  };
}

export default { initialize, render };
