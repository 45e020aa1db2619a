// imagerank label panel (anywidget ESM). The protocol is documented in label.py.
//
// One candidate at a time beside the subject's current image. G good, B bad, S skip, U back; Esc releases the
// keyboard. Keys are taken only while the panel has the focus (click it), and plain keys never reach JupyterLab
// (takeKeys, from panel.js, put before this module with el and fmt).

const KEYS = { g: "good", G: "good", b: "bad", B: "bad", s: "skip", S: "skip", u: "back", U: "back",
  Escape: "escape" };

function render({ model, el: host }) {
  const root = el("div", "imagerank-label ir-theme ir-panel");
  root.setAttribute("aria-label", "Label panel. G good, B bad, S skip, U back, Escape releases the keyboard.");

  const header = el("div", "il-header");
  const subject = el("span", "il-subject");
  const count = el("span", "il-count");
  const keyhint = el("span", "il-keyhint");
  header.append(subject, count, keyhint);

  const stage = el("div", "il-stage");
  const currentFig = el("figure", "il-side il-current");
  const currentImg = el("img");
  currentImg.alt = "current image";
  const currentNone = el("div", "il-none", "no image picked yet");
  currentFig.append(currentImg, currentNone, el("figcaption", null, "current image"));
  const candFig = el("figure", "il-side il-candidate");
  const candImg = el("img");
  candImg.alt = "candidate";
  const candCap = el("figcaption", "il-caption");
  candFig.append(candImg, candCap);
  stage.append(currentFig, candFig);

  const buttons = el("div", "il-buttons");
  for (const [action, label, key] of [["good", "Good", "G"], ["bad", "Bad", "B"], ["skip", "Skip", "S"],
    ["back", "Back", "U"]]) {
    const b = el("button", `il-btn il-btn-${action}`);
    b.type = "button";
    b.append(el("span", null, label + " "), el("kbd", null, key));
    b.addEventListener("click", (e) => { e.preventDefault(); act(action); root.focus({ preventScroll: true }); });
    buttons.append(b);
  }
  const status = el("div", "il-status");
  const done = el("div", "il-done", "Every candidate is labelled.");
  root.append(header, stage, buttons, done, status);
  host.append(root);

  let urls = [];
  let shownCid = null;
  // A key pressed before Python shows the next candidate waits for it (never labels the wrong one).
  let pending = null; // the position sent, until "item" moves on or an error comes back
  let queued = null;

  function act(action) {
    const item = model.get("item");
    if (action === "escape") { root.blur(); return; }
    if (pending !== null) { queued = action; return; }
    if (action === "back") {
      if (item.position === 0) return;
      pending = item.position;
      model.send({ type: "back" });
      return;
    }
    if (item.finished) return;
    pending = item.position;
    model.send({ type: "label", cid: item.cid, label: action });
  }

  function release() {
    pending = null;
    if (queued !== null) {
      const q = queued;
      queued = null;
      act(q);
    }
  }

  function renderItem() {
    const item = model.get("item");
    if (pending !== null && item.position !== pending) release();
    done.style.display = item.finished ? "block" : "none";
    stage.style.display = item.finished ? "none" : "flex";
    count.textContent = `${Math.min(item.position + 1, item.total)} of ${item.total} · labelled ${item.labelled}`;
    if (item.finished) { subject.textContent = ""; return; }
    subject.textContent = item.subject;
    candCap.textContent = `${item.title} · score ${fmt(item.score, 2)} (aesthetic ${fmt(item.aesthetic, 2)}, ` +
      `similarity ${fmt(item.similarity, 3)}) · ${item.licence || "licence unknown"}` +
      (item.label ? ` · labelled ${item.label}` : "");
    root.dataset.cid = String(item.cid);
  }

  function renderStatus() {
    const s = model.get("status") || {};
    if (s.level === "error" && pending !== null) { queued = null; pending = null; }
    status.textContent = s.text || "";
    status.className = `il-status il-${s.level || "info"}`;
  }

  function onCustom(msg, buffers) {
    if (msg.type !== "images") return;
    urls.forEach((u) => URL.revokeObjectURL(u));
    urls = [];
    const [cur, cand] = buffers;
    if (msg.has_current && cur && cur.byteLength) {
      const u = URL.createObjectURL(new Blob([cur], { type: "image/jpeg" }));
      urls.push(u);
      currentImg.src = u;
      currentImg.style.display = "block";
      currentNone.style.display = "none";
    } else {
      currentImg.style.display = "none";
      currentNone.style.display = "flex";
    }
    const u2 = URL.createObjectURL(new Blob([cand], { type: "image/jpeg" }));
    urls.push(u2);
    candImg.src = u2;
    shownCid = msg.cid;
    root.dataset.shown = String(shownCid);
  }

  const onFocus = () => { keyhint.textContent = "⌨ G good · B bad · S skip · U back · Esc releases"; };
  const onBlur = () => { keyhint.textContent = "click the panel to label with the keyboard"; };
  const detachKeys = takeKeys(root, { keys: KEYS, act, focused: onFocus, blurred: onBlur });
  model.on("change:item", renderItem);
  model.on("change:status", renderStatus);
  model.on("msg:custom", onCustom);

  onBlur();
  renderItem();
  renderStatus();
  model.send({ type: "ready" });

  return () => {
    urls.forEach((u) => URL.revokeObjectURL(u));
    detachKeys();
    model.off("msg:custom", onCustom);
    model.off("change:item", renderItem);
    model.off("change:status", renderStatus);
  };
}

export default { render };
