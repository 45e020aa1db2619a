// imagerank burst panel (anywidget ESM). The protocol is documented in burst.py.
//
// The model holds the groups (frames of one near-duplicate cluster), the current position and the choices
// recorded; the images arrive as binary buffers (a "view" and a 100 % "zoom" crop per frame) and are held as
// object URLs shared by every view of one panel in this page (SHARED, keyed by the model's panel_id). The helpers
// el, fmt, sharedViews and takeKeys (the keyboard contract) come from panel.js, put before this module.

const SHARED = (globalThis.__imagerankBurst ??= new Map());

const KEYS = {
  "1": "mark0", "2": "mark1", "3": "mark2", "4": "mark3",
  Enter: "record", " ": "record",
  s: "skip", S: "skip",
  ArrowLeft: "prev", ArrowRight: "next",
  u: "undo", U: "undo",
  z: "zoom", Z: "zoom",
  Escape: "escape",
};

function sharedState(model) {
  return sharedViews(SHARED, model.get("panel_id"));
}

function onCustom(model, msg, buffers) {
  const s = sharedState(model);
  if (msg.type === "images") {
    msg.ids.forEach((id, k) => {
      const key = `${msg.kinds[k]}:${id}`;
      if (s.urls.has(key)) URL.revokeObjectURL(s.urls.get(key));
      s.urls.set(key, URL.createObjectURL(new Blob([buffers[k]], { type: msg.mime || "image/jpeg" })));
    });
    for (const v of s.views) v.update();
  } else if (msg.type === "undone") {
    for (const v of s.views) v.onUndone(msg.gid);
  }
}

function initialize({ model }) {
  sharedState(model);
  model.on("msg:custom", (msg, buffers) => onCustom(model, msg, buffers));
}

function render({ model, el: host }) {
  const s = sharedState(model);
  const root = el("div", "imagerank-burst ir-theme ir-panel");
  root.setAttribute("aria-label",
    "Burst panel. 1 to 4 mark a keeper, Enter records the keepers, S skips, left and right arrows move between " +
    "bursts, U undoes, Z shows or hides the 100 percent crops, Escape releases the keyboard.");

  const header = el("div", "ir-header");
  const counts = el("span", "ir-counts");
  const keyhint = el("span", "ir-keyhint");
  header.append(counts, keyhint);
  const stage = el("div", "ir-stage");
  const empty = el("div", "ir-wait", "No bursts to refine.");
  const buttons = el("div", "ir-buttons");
  const statusLine = el("div", "ir-status");
  root.append(header, stage, buttons, statusLine);
  host.append(root);

  const BUTTONS = [
    ["record", "Record keepers", "Enter"], ["skip", "Skip", "S"], ["prev", "← Previous", "←"],
    ["next", "Next →", "→"], ["undo", "Undo", "U"], ["zoom", "100 % crops", "Z"],
  ];
  const buttonEls = {};
  for (const [action, label, key] of BUTTONS) {
    const b = el("button", `ir-btn ir-btn-${action}`);
    b.type = "button";
    b.append(el("span", "ir-btn-label", label), el("kbd", null, key));
    b.addEventListener("click", (e) => {
      e.preventDefault();
      act(action, performance.now());
      root.focus({ preventScroll: true });
    });
    buttonEls[action] = b;
    buttons.append(b);
  }

  let marks = new Set(); // ids marked as keepers in the group on screen
  let marksFor = null; // gid the marks belong to
  let shownAt = performance.now();
  let pending = null; // gid whose pick was sent and not yet confirmed by "done"

  function current() {
    const groups = model.get("groups");
    if (!groups.length) return null;
    const p = Math.min(Math.max(model.get("position"), 0), groups.length - 1);
    return { g: groups[p], p, n: groups.length };
  }

  function update() {
    const c = current();
    stage.replaceChildren();
    if (!c) {
      stage.append(empty);
      counts.textContent = "0 bursts";
      return;
    }
    const { g, p, n } = c;
    if (marksFor !== g.gid) {
      marksFor = g.gid;
      marks = new Set();
      shownAt = performance.now();
    }
    const done = model.get("done")[g.gid];
    const recorded = Object.keys(model.get("done")).length;
    counts.textContent = `Burst ${p + 1} of ${n} · ${recorded} recorded · ${g.size} frames in the cluster` +
      (done ? " · recorded (U undoes)" : "");
    stage.style.setProperty("--ir-cols", String(g.items.length));
    stage.classList.toggle("ir-nozoom", !model.get("show_zoom"));
    g.items.forEach((it, k) => {
      const fig = el("figure", "ir-frame");
      fig.dataset.id = String(it.id);
      const kept = done ? done.keepers.includes(it.id) : marks.has(it.id);
      fig.classList.toggle("ir-kept", kept);
      fig.classList.toggle("ir-cullpick", !!it.pick);
      const slot = el("div", "ir-slot");
      const url = s.urls.get(`view:${it.id}`);
      if (url) {
        const img = el("img", "ir-img");
        img.alt = it.name;
        img.src = url;
        img.draggable = false;
        img.addEventListener("error", () => model.send({ type: "broken", id: it.id }));
        slot.append(img);
      } else {
        slot.append(el("span", "ir-loading", "loading…"));
      }
      const zoom = el("div", "ir-zoom");
      const zurl = s.urls.get(`zoom:${it.id}`);
      if (zurl) {
        const z = el("img", "ir-zoom-img");
        z.alt = `${it.name}, sharpest region at 100 %`;
        z.src = zurl;
        z.draggable = false;
        zoom.append(z);
      }
      const cap = el("figcaption", "ir-caption");
      cap.append(el("kbd", "ir-key", String(k + 1)), el("span", "ir-name", it.name));
      const facts = [`score ${fmt(it.score)}`];
      if (typeof it.learned === "number") facts.push(`learned ${fmt(it.learned, 2)}`);
      if (it.pick) facts.push("cull's pick");
      if (kept) facts.push("KEEP");
      cap.append(el("span", "ir-stats", facts.join(" · ")));
      fig.append(slot, zoom, cap);
      fig.addEventListener("click", () => act(`mark${k}`, performance.now()));
      stage.append(fig);
    });
    buttonEls.undo.disabled = !model.get("can_undo");
    buttonEls.record.disabled = !!done;
  }

  function renderStatus() {
    const st = model.get("status") || {};
    statusLine.textContent = st.text || "";
    statusLine.dataset.level = st.level || "info";
  }

  function act(action, t) {
    const c = current();
    if (action === "escape") { root.blur(); return; }
    if (action === "undo") { model.send({ type: "undo" }); return; }
    if (action === "zoom") { model.set("show_zoom", !model.get("show_zoom")); model.save_changes(); update(); return; }
    if (!c) return;
    const { g, p, n } = c;
    if (action === "prev" || action === "next") {
      const q = action === "prev" ? p - 1 : p + 1;
      if (q >= 0 && q < n) model.send({ type: "goto", position: q });
      return;
    }
    if (action === "skip") { model.send({ type: "skip", gid: g.gid }); return; }
    if (model.get("done")[g.gid] || pending === g.gid) return;
    if (action.startsWith("mark")) {
      const it = g.items[Number(action.slice(4))];
      if (!it) return;
      if (marks.has(it.id)) marks.delete(it.id); else marks.add(it.id);
      update();
      return;
    }
    if (action === "record") {
      let keepers = [...marks];
      if (!keepers.length) keepers = g.items.filter((it) => it.pick).map((it) => it.id);
      if (!keepers.length) return;
      pending = g.gid;
      model.send({ type: "pick", gid: g.gid, keepers, ms: Math.max(0, Math.round(t - shownAt)) });
    }
  }

  function onUndone(gid) {
    if (gid && marksFor === gid) marks = new Set();
    if (pending === gid) pending = null;
    update();
  }

  function onFocus() {
    keyhint.textContent = "⌨ keys go to this panel · Esc releases them";
    root.classList.add("ir-focused");
  }
  function onBlur() {
    keyhint.textContent = "click the panel to pick with the keyboard";
    root.classList.remove("ir-focused");
  }

  const detachKeys = takeKeys(root, { keys: KEYS, act, focused: onFocus, blurred: onBlur });

  const view = { update, onUndone };
  s.views.add(view);
  const onDone = () => { pending = null; update(); };
  model.on("change:groups", update);
  model.on("change:position", update);
  model.on("change:done", onDone);
  model.on("change:can_undo", update);
  model.on("change:show_zoom", update);
  model.on("change:status", renderStatus);

  onBlur();
  renderStatus();
  update();
  model.send({ type: "ready" });

  return () => {
    s.views.delete(view);
    detachKeys();
  };
}

export default { initialize, render };
