"""A deterministic demo collection: procedural images with the variety a real shoot has.

:func:`make_demo` paints about ``n`` images (numpy + Pillow, no downloads) into ``<workspace>/images/``, writes
``<workspace>/demo_manifest.json`` saying what each file is, then creates the workspace and scans it. The
collection has:

- varied palettes (harmonious hue families), linear and radial gradients, stripes, value-noise textures,
  photo-like fine detail and thin strokes (so sharp images pass the default blur threshold, as real sharp photos
  do) and shapes (ellipses, rectangles, polygons, lines, some translucent);
- technically bad images: blurred (Gaussian, radius 3–8 px), over-exposed (mean luma about 215–245, clipped
  highlights) and under-exposed (mean luma 12–32);
- near-duplicate variants of earlier images (a crop of at most 1.5 % per edge resized back, brightness within
  ±6 %, light noise), close in perceptual hash;
- bursts of 3–6 frames whose EXIF ``DateTimeOriginal`` + ``SubSecTimeOriginal`` are 0.1–0.4 s apart, while
  other images are minutes apart;
- sizes 640–1024 px on the longest side, JPEG with a few PNG (PNG carries no capture time).

The same ``seed`` and ``n`` give the same files byte for byte on one Pillow/libjpeg build.
"""

from __future__ import annotations

import colorsys
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import ExifTags, Image, ImageDraw, ImageFilter

from ._util import progress_enabled
from .errors import InvalidArgumentError
from .training.simulate import DEMO_MANIFEST, is_demo_workspace

if TYPE_CHECKING:
    from .collection import Collection

__all__ = [
    "DEFAULT_AUTOPICK_DEMO", "DEFAULT_CULL_DEMO", "DEFAULT_DEMO", "DemoImage", "crop_demo_collection",
    "is_demo_workspace", "make_demo", "open_autopick_demo", "open_cull_demo", "open_demo", "render_demo_images",
]

_SIZES = ((1024, 768), (768, 1024), (800, 800), (960, 640), (640, 960), (1024, 683), (900, 675), (720, 960))
_START = datetime(2024, 6, 1, 9, 0, 0)
MANIFEST_NAME = DEMO_MANIFEST
#: Where :func:`open_demo` puts the demo without a path or ``IMAGERANK_WORKSPACE``: relative to the current folder,
#: so from ``notebooks/`` it is the repository's ``data/demo``.
DEFAULT_DEMO = "../data/demo"
#: Where :func:`open_cull_demo` puts the burst-shoot demo without a path or ``IMAGERANK_CULL_DEMO``.
DEFAULT_CULL_DEMO = "../data/cull-demo"
#: Where :func:`open_autopick_demo` puts its workspace without a path or ``IMAGERANK_AUTOPICK_DEMO``.
DEFAULT_AUTOPICK_DEMO = "../data/autopick-demo"


@dataclass
class DemoImage:
    """What one generated file is.

    Attributes:
        filename: name inside ``images/``.
        kind: ``base``, ``near_duplicate`` or ``burst``.
        defects: subset of ``blurred``, ``overexposed``, ``underexposed``.
        source: for near-duplicates and burst frames, the file name they derive from (a burst's first frame
            for burst frames, itself None).
        burst: burst number (0, 1 ...) or None.
        captured_at: EXIF capture time ``YYYY-MM-DDTHH:MM:SS.fff`` or None (PNG).
        width, height: pixels.
    """

    filename: str
    kind: str
    defects: list[str]
    source: str | None
    burst: int | None
    captured_at: str | None
    width: int
    height: int


# ---------------------------------------------------------------------------------------------- painting
def _palette(rng: np.random.Generator) -> np.ndarray:
    """(K, 3) uint8 colours from one hue family (analogous, complementary or triadic), K in 3..6."""
    base = rng.random()
    scheme = rng.integers(3)
    offsets = [(0.0, 0.05, -0.05, 0.1), (0.0, 0.5, 0.04, 0.54), (0.0, 1 / 3, 2 / 3, 0.05)][int(scheme)]
    k = int(rng.integers(3, 7))
    cols = []
    for idx in range(k):
        h = (base + offsets[idx % len(offsets)] + rng.normal(0, 0.02)) % 1.0
        s = float(np.clip(rng.uniform(0.25, 0.95), 0, 1))
        v = float(np.clip(rng.uniform(0.35, 1.0), 0, 1))
        cols.append([round(c * 255) for c in colorsys.hsv_to_rgb(h, s, v)])
    return np.asarray(cols, dtype=np.uint8)


def _value_noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """(h, w) float32 smooth noise in [0, 1]: a ``cells``-wide random grid upsampled bicubically."""
    gw, gh = max(2, cells), max(2, round(cells * h / w))
    grid = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8), "L")
    return np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def _background(rng: np.random.Generator, w: int, h: int, pal: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 in [0, 255]: a linear or radial gradient between two palette colours, plus texture."""
    c0, c1 = pal[rng.choice(len(pal), 2, replace=False)].astype(np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        ang = rng.uniform(0, np.pi)
        t = xs * np.cos(ang) + ys * np.sin(ang)
    else:
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        t = np.hypot(xs - cx, ys - cy)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    texture = rng.integers(4)
    if texture == 1:  # stripes
        freq = rng.uniform(8, 40) / w
        ang = rng.uniform(0, np.pi)
        s = np.sin(2 * np.pi * freq * (xs * np.cos(ang) + ys * np.sin(ang)))
        img += (s * rng.uniform(10, 35))[..., None]
    elif texture == 2:  # clouds
        n = _value_noise(rng, w, h, int(rng.integers(4, 12)))
        img += ((n - 0.5) * rng.uniform(40, 110))[..., None]
    elif texture == 3:  # fine grain texture (sharp detail)
        n = _value_noise(rng, w, h, int(rng.integers(60, 160)))
        img += ((n - 0.5) * rng.uniform(20, 60))[..., None]
    return img


def _shapes(rng: np.random.Generator, im: Image.Image, pal: np.ndarray) -> Image.Image:
    """Draw 3–12 ellipses, rectangles, polygons and lines in palette colours (some translucent)."""
    w, h = im.size
    overlay = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(int(rng.integers(3, 13))):
        col = tuple(int(c) for c in pal[int(rng.integers(len(pal)))])
        alpha = 255 if rng.random() < 0.6 else int(rng.integers(90, 200))
        fill = (*col, alpha)
        kind = rng.integers(4)
        x0, y0 = rng.uniform(-0.1, 0.9) * w, rng.uniform(-0.1, 0.9) * h
        sw, sh = rng.uniform(0.05, 0.45) * w, rng.uniform(0.05, 0.45) * h
        box = [x0, y0, x0 + sw, y0 + sh]
        if kind == 0:
            draw.ellipse(box, fill=fill)
        elif kind == 1:
            draw.rectangle(box, fill=fill)
        elif kind == 2:
            pts = [(x0 + rng.uniform(0, sw), y0 + rng.uniform(0, sh)) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(pts, fill=fill)
        else:
            draw.line([(x0, y0), (x0 + sw, y0 + sh)], fill=fill, width=int(rng.integers(2, 14)))
    return Image.alpha_composite(im.convert("RGBA"), overlay).convert("RGB")


def _paint(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """One procedural RGB image of ``size`` (w, h)."""
    w, h = size
    pal = _palette(rng)
    bg = _background(rng, w, h, pal)
    # fine detail (features of 2.5-5 px, like foliage, fabric or skin texture in a photo): without it the
    # variance of the Laplacian of a 512-px thumbnail is far below real sharp photos' (10th percentile about 230
    # on the shared test photos) and the blur flag would fire on nearly every demo image
    fine = _value_noise(rng, w, h, int(w / rng.uniform(2.5, 5.0)))
    bg += ((fine - 0.5) * rng.uniform(30, 70))[..., None]
    im = _shapes(rng, Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB"), pal)
    d = ImageDraw.Draw(im)  # thin high-contrast strokes: sharp edges
    for _ in range(int(rng.integers(10, 40))):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        col = (255, 255, 255) if rng.random() < 0.5 else (10, 10, 10)
        d.line([(x, y), (x + rng.uniform(-60, 60), y + rng.uniform(-60, 60))], fill=col, width=1)
    return im


def _grain(rng: np.random.Generator, im: Image.Image, sd: float) -> Image.Image:
    a = np.asarray(im, dtype=np.int16)
    noise = rng.normal(0, sd, size=a.shape[:2])[..., None].astype(np.int16)
    return Image.fromarray(np.clip(a + noise, 0, 255).astype(np.uint8), "RGB")


def _exposure(im: Image.Image, gain: float, offset: float) -> Image.Image:
    a = np.asarray(im, dtype=np.float32) * gain + offset
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def _expose_to(im: Image.Image, gain: float, target: float) -> Image.Image:
    """Scale contrast by ``gain`` and shift so the mean luma lands near ``target`` despite clipping."""
    a = np.asarray(im, dtype=np.float32)
    offset = target - gain * float(a.mean())
    for _ in range(4):  # clipping at 255 pulls the mean down; push the offset up until it lands
        out = np.clip(a * gain + offset, 0, 255)
        miss = target - float(out.mean())
        if miss < 1.0:
            break
        offset += miss * 1.5
    return Image.fromarray(out.astype(np.uint8), "RGB")


def _near_duplicate(rng: np.random.Generator, im: Image.Image) -> Image.Image:
    """A variant: crop <= 1.5 % per edge resized back, brightness within ±6 %, light noise."""
    w, h = im.size
    left, top = rng.uniform(0, 0.015) * w, rng.uniform(0, 0.015) * h
    right, bottom = w - rng.uniform(0, 0.015) * w, h - rng.uniform(0, 0.015) * h
    out = im.crop((round(left), round(top), round(right), round(bottom))).resize((w, h), Image.Resampling.BILINEAR)
    out = _exposure(out, float(rng.uniform(0.94, 1.06)), 0.0)
    return _grain(rng, out, float(rng.uniform(1.0, 3.0)))


def _burst_frame(rng: np.random.Generator, im: Image.Image, shake: bool) -> Image.Image:
    """A burst frame: the scene shifted a few pixels, new sensor noise; ``shake`` adds motion blur."""
    w, h = im.size
    dx, dy = int(rng.integers(-6, 7)), int(rng.integers(-6, 7))
    out = im.transform((w, h), Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), resample=Image.Resampling.BILINEAR)
    out = out.crop((8, 8, w - 8, h - 8)).resize((w, h), Image.Resampling.BILINEAR)
    if shake:
        out = out.filter(ImageFilter.BoxBlur(float(rng.uniform(2.0, 4.0))))
    return _grain(rng, out, float(rng.uniform(1.5, 3.5)))


def _exif_bytes(when: datetime) -> Image.Exif:
    ex = Image.Exif()
    ex[0x010F] = "imagerank"  # Make
    ex[0x0110] = "procedural demo"  # Model
    ex[0x0112] = 1  # Orientation: upright
    ifd = ex.get_ifd(ExifTags.IFD.Exif)
    ifd[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    ifd[0x9291] = f"{when.microsecond // 1000:03d}"  # SubSecTimeOriginal (milliseconds)
    return ex


def _plan(n: int, rng: np.random.Generator) -> list[tuple[str, int]]:
    """The order of items: ("base", 0), ("dup", 0) or ("burst", frames). Bursts hold ~10 % of the images."""
    n_bursts = max(1, min(8, n // 40)) if n >= 12 else 0
    items: list[tuple[str, int]] = [("burst", int(rng.integers(3, 7))) for _ in range(n_bursts)]
    left = n - sum(k for _, k in items)
    n_dup = max(0, round(left * 0.09)) if left >= 10 else 0
    items += [("dup", 0)] * n_dup + [("base", 0)] * (left - n_dup)
    # the first items are always plain bases so near-duplicates have a source
    head, tail = items[-min(3, len(items)):], items[: -min(3, len(items))]
    order = rng.permutation(len(tail))
    return head + [tail[int(i)] for i in order]


def render_demo_images(
    images_dir: str | os.PathLike[str], n: int = 300, seed: int = 0, *, progress: bool = True
) -> list[DemoImage]:
    """Paint about ``n`` demo images into ``images_dir`` (created) and return what each one is.

    Files that already exist are left untouched (their manifest entry is still returned), so a re-run after an
    interruption completes the set. Cost: about 30–50 ms per image on one core.

    Raises:
        InvalidArgumentError: ``n`` < 1.
    """
    if n < 1:
        raise InvalidArgumentError(f"n: expected at least 1 image, got {n}")
    from tqdm.auto import tqdm

    folder = Path(images_dir)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    plan = _plan(n, rng)
    out: list[DemoImage] = []
    bases: list[tuple[str, Image.Image]] = []  # recent plain images, sources for near-duplicates
    when = _START
    counter = 0
    bar = tqdm(total=n, desc="demo images", unit="img", disable=not progress_enabled(progress), leave=False)

    def save(im: Image.Image, name: str, captured: datetime | None, fmt: str) -> None:
        path = folder / name
        quality = int(rng.integers(82, 95))  # drawn even when the file exists, so the stream stays the same
        if path.exists():
            return
        tmp = path.with_name(path.name + ".part")
        if fmt == "PNG":
            im.save(tmp, "PNG", compress_level=1)
        else:
            im.save(tmp, "JPEG", quality=quality, exif=_exif_bytes(captured or _START))
        os.replace(tmp, path)

    for burst_no, (kind, frames) in enumerate(plan):
        size = _SIZES[int(rng.integers(len(_SIZES)))]
        if kind == "burst":
            scene = _paint(rng, size)
            first = None
            when += timedelta(minutes=float(rng.uniform(3, 20)))
            t = when
            shaky = int(rng.integers(frames))
            bno = sum(1 for k, _ in plan[:burst_no] if k == "burst")
            for f in range(frames):
                counter += 1
                name = f"IMG_{counter:04d}.jpg"
                frame = _burst_frame(rng, scene, shake=f == shaky)
                defects = ["blurred"] if f == shaky else []
                save(frame, name, t, "JPEG")
                out.append(DemoImage(name, "burst", defects, first, bno, t.isoformat(timespec="milliseconds"),
                                     *size))
                first = first or name
                t += timedelta(seconds=float(rng.uniform(0.1, 0.4)))
                bar.update(1)
            when = t
            continue
        counter += 1
        when += timedelta(minutes=float(rng.uniform(1, 15)))
        if kind == "dup" and bases:
            src_name, src = bases[int(rng.integers(len(bases)))]
            im = _near_duplicate(rng, src)
            source: str | None = src_name
            size = im.size
            kind = "near_duplicate"
        else:
            im = _paint(rng, size)
            source = None
            kind = "base"
        defects = []
        r = rng.random()
        if kind == "base" and r < 0.09:
            im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(3, 8))))
            defects.append("blurred")
        elif kind == "base" and r < 0.15:
            im = _expose_to(im, float(rng.uniform(1.2, 1.5)), float(rng.uniform(222, 240)))
            defects.append("overexposed")
        elif kind == "base" and r < 0.21:
            mean = max(float(np.asarray(im.convert("L")).mean()), 1.0)
            im = _exposure(im, float(rng.uniform(12, 32)) / mean, 0.0)  # mean luma lands at 12-32
            defects.append("underexposed")
        png = kind == "base" and rng.random() < 0.05
        name = f"IMG_{counter:04d}." + ("png" if png else "jpg")
        save(im, name, None if png else when, "PNG" if png else "JPEG")
        out.append(DemoImage(name, kind, defects, source, None,
                             None if png else when.isoformat(timespec="milliseconds"), *size))
        if kind == "base" and not defects:
            bases.append((name, im))
            if len(bases) > 12:
                bases.pop(0)
        bar.update(1)
    bar.close()
    return out


def make_demo(
    workspace: str | os.PathLike[str], n: int = 300, seed: int = 0, progress: bool = True
) -> Collection:
    """Create (or open) the demo workspace: ``n`` procedural images in ``<workspace>/images/``, scanned.

    Idempotent: when ``<workspace>/imagerank.db`` already lists images, the workspace is opened as it is
    (votes kept, nothing regenerated).

    Args:
        workspace: folder to create or reuse.
        n: number of images (default 300; ~10 % in bursts, ~9 % near-duplicates, ~20 % with a defect).
        seed: generator seed; the same seed gives the same collection.
        progress: show ``tqdm.auto`` bars.

    Returns:
        The open :class:`~imagerank.Collection`, scanned, thumbnails built, cheap features cached (so the live
        prior of :meth:`~imagerank.Collection.refit_prior` works without a features pass).
    """
    from .collection import DB_NAME, init, open_collection

    root = Path(workspace)
    if (root / DB_NAME).exists():
        col = open_collection(root)
        if col.db.query("SELECT COUNT(*) FROM images")[0][0] > 0:
            return col
        col.close()
    images = root / "images"
    manifest = render_demo_images(images, n=n, seed=seed, progress=progress)
    (root / MANIFEST_NAME).write_text(
        json.dumps({"seed": seed, "n": n, "images": [asdict(m) for m in manifest]}, indent=1), encoding="utf-8"
    )
    col = init(root, images)
    # the scan's one decode per image also writes the cheap sidecar: the live prior can start after the first 250
    # votes without a features pass
    col.scan(progress=progress, extractors=("cheap",))
    return col


def open_demo(path: str | os.PathLike[str] | None = None, *, n: int = 300, seed: int = 0,
              progress: bool = True) -> Collection:
    """The notebooks' first cell: open the workspace to work on, building the demo when there is none.

    The folder is ``path``, else the environment variable ``IMAGERANK_WORKSPACE``, else :data:`DEFAULT_DEMO`
    (``../data/demo`` from the current folder). A workspace that exists there (``imagerank.db``) and is not a demo
    is opened as it is; otherwise :func:`make_demo` builds the demo there (``n`` images, ``seed``) or reopens it.

    Returns:
        The open :class:`~imagerank.Collection`.

    Raises:
        InvalidArgumentError: ``n`` < 1 when the demo has to be built.
        WorkspaceNotFoundError, SchemaVersionError: the workspace there cannot be opened.
    """
    from .collection import DB_NAME, open_collection

    root = Path(path if path is not None else os.environ.get("IMAGERANK_WORKSPACE") or DEFAULT_DEMO).expanduser()
    if (root / DB_NAME).exists() and not (root / MANIFEST_NAME).exists():
        return open_collection(root)
    return make_demo(root, n=n, seed=seed, progress=progress)


def crop_demo_collection(folder: str | os.PathLike[str], n: int = 120, *, size: int = 96, seed: int = 0
                         ) -> tuple[Collection, Any]:
    """DEMO ONLY: a separate small workspace in ``folder`` with :func:`write_crop_demo` images (in
    ``folder/images``) and their ideal crops imported from the crop log, so the crop notebook can train without
    touching the user's own catalog. Idempotent: an existing demo workspace is reopened.

    Returns:
        (the demo Collection, the :class:`~imagerank.training.imports.ImportReport` of its crop log, or None
        when reopened).
    """
    from .collection import DB_NAME, init, open_collection
    from .training.imports import import_crop_log
    from .training.simulate import write_crop_demo

    root = Path(folder)
    if (root / DB_NAME).exists():
        col = open_collection(root)
        if col.catalog.crops.count() > 0:
            return col, None
        col.close()
    csv_path = write_crop_demo(root / "images", n, size=size, seed=seed)
    col = init(root, root / "images")
    col.scan(progress=False)
    return col, import_crop_log(col, csv_path)


def open_cull_demo(path: str | os.PathLike[str] | None = None, *, n_bursts: int = 16, seed: int = 0,
                   progress: bool = False) -> Collection:
    """The cull notebook's first cell: a workspace over a generated burst shoot, built on first use.

    The folder is ``path``, else the environment variable ``IMAGERANK_CULL_DEMO``, else :data:`DEFAULT_CULL_DEMO`
    (``../data/cull-demo`` from the current folder). The shoot (:func:`imagerank.cull.shoot.render_burst_shoot`:
    ``n_bursts`` bursts of 2–4 frames that differ in sharpness, brightness and saturation) is painted into
    ``<folder>/shoot``, which is the workspace's one image folder; the scan writes the cheap features the burst
    reranker learns from. An existing workspace there is opened as it is (choices kept, nothing regenerated).

    Returns:
        The open :class:`~imagerank.Collection`; the shoot is ``col.settings.roots[0]``.

    Raises:
        InvalidArgumentError: ``n_bursts`` < 1 when the shoot has to be painted.
    """
    from .collection import DB_NAME, init, open_collection
    from .cull.shoot import render_burst_shoot

    root = Path(path if path is not None else os.environ.get("IMAGERANK_CULL_DEMO") or DEFAULT_CULL_DEMO)
    root = root.expanduser()
    if (root / DB_NAME).exists():
        return open_collection(root)
    render_burst_shoot(root / "shoot", n_bursts, seed=seed)
    col = init(root, root / "shoot")
    col.scan(progress=progress, extractors=("cheap",))
    return col


def open_autopick_demo(path: str | os.PathLike[str] | None = None) -> Collection:
    """The auto-pick notebook's first cell: a workspace of its own for the offline run against the local stand-in
    for Wikimedia Commons, so its made-up subjects and winners never land in the workspace you vote in
    (``IMAGERANK_WORKSPACE`` is not read here).

    The folder is ``path``, else the environment variable ``IMAGERANK_AUTOPICK_DEMO``, else
    :data:`DEFAULT_AUTOPICK_DEMO` (``../data/autopick-demo`` from the current folder); created empty (no image
    folders: winners are stored under ``<folder>/autopick/images``) on first use and reopened as it is afterwards.

    Returns:
        The open :class:`~imagerank.Collection`.

    Raises:
        WorkspaceNotFoundError, SchemaVersionError: a workspace there cannot be opened.
    """
    from .collection import DB_NAME, init, open_collection

    root = Path(path if path is not None else os.environ.get("IMAGERANK_AUTOPICK_DEMO") or DEFAULT_AUTOPICK_DEMO)
    root = root.expanduser()
    if (root / DB_NAME).exists():
        return open_collection(root)
    return init(root)
