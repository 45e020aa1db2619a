// imagerank panels: the helpers every panel's ESM shares (widgets/common.py puts this file before each panel's
// own module, so they are plain declarations, not imports: anywidget loads one module per widget).
//
// - el / fmt: DOM and number formatting;
// - sharedViews: the object URLs and views of one panel shared by every view of it in this page;
// - takeKeys: the keyboard contract of every panel. Plain keys are taken only while the panel has the focus and
//   never reach JupyterLab (keydown, keyup and keypress stop there); with Ctrl, Meta or Alt the panel steps aside
//   for that event so JupyterLab's own shortcuts still work; a held key does not repeat an action (Esc aside);
//   a left click focuses the panel without stealing the click from its buttons.

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function fmt(x, d = 3) {
  return typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : "–";
}

function sharedViews(registry, id) {
  let s = registry.get(id);
  if (!s) {
    s = { urls: new Map(), views: new Set() };
    registry.set(id, s);
  }
  return s;
}

const SCROLL_KEYS = new Set([" ", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageDown", "PageUp"]);

// keys: {key: action}; act(action, timeStamp); focused() / blurred(): the panel's own hint and styling.
// scrollKeys: also swallow the page-scrolling keys the panel does not use. Returns the function that detaches.
function takeKeys(root, { keys, act, focused, blurred, scrollKeys = false }) {
  root.tabIndex = 0;
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.setAttribute("role", "application");
  function onKeyDown(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) {
      root.removeAttribute("data-lm-suppress-shortcuts");
      setTimeout(() => root.setAttribute("data-lm-suppress-shortcuts", "true"), 0);
      return;
    }
    e.stopPropagation(); // plain keys never reach JupyterLab
    const action = keys[e.key];
    if (!action) {
      if (scrollKeys && SCROLL_KEYS.has(e.key)) e.preventDefault();
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
    if (!e.target.closest("button")) e.preventDefault();
    root.focus({ preventScroll: true });
  }
  const handlers = [["keydown", onKeyDown], ["keyup", stopPlain], ["keypress", stopPlain],
    ["mousedown", onMouseDown], ["focus", focused], ["blur", blurred]];
  for (const [type, fn] of handlers) root.addEventListener(type, fn);
  return () => { for (const [type, fn] of handlers) root.removeEventListener(type, fn); };
}
