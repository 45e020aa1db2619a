"""XMP sidecars with the cull's verdict: ``xmp:Rating`` (1–5) and ``xmp:Label`` by bucket, merged, never replaced.

XMP (ISO 16684-1) keeps properties of the ``http://ns.adobe.com/xap/1.0/`` namespace (prefix ``xmp``) as attributes
or child elements of an ``rdf:Description``; Lightroom / Camera Raw, darktable and digiKam read ``xmp:Rating`` and
``xmp:Label`` from sidecars. Names: a RAW file's sidecar is ``<stem>.xmp`` (Adobe's convention) unless a
``<name>.<ext>.xmp`` (darktable's and digiKam's) already exists; other files get ``<name>.<ext>.xmp``. An existing
sidecar is parsed and only the two properties are set in its first ``rdf:Description`` (every other property,
namespace prefix and the rest of the packet are kept); a sidecar that is not well-formed XML is left as it is and
the failure is reported.
"""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from ..errors import ImagerankError

__all__ = ["BUCKET_LABEL", "BUCKET_RATING", "sidecar_path", "write_xmp"]

#: Bucket -> xmp:Rating (1–5).
BUCKET_RATING: dict[str, int] = {"best": 5, "good": 4, "maybe": 2, "trash": 1}
#: Bucket -> xmp:Label (Lightroom's colour-label names).
BUCKET_LABEL: dict[str, str] = {"best": "Green", "good": "Blue", "maybe": "Yellow", "trash": "Red"}

_X, _RDF, _XMP = "adobe:ns:meta/", "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "http://ns.adobe.com/xap/1.0/"
_TEMPLATE = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    f'<x:xmpmeta xmlns:x="{_X}">\n'
    f' <rdf:RDF xmlns:rdf="{_RDF}">\n'
    f'  <rdf:Description rdf:about="" xmlns:xmp="{_XMP}"/>\n'
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>\n'
)


def sidecar_path(path: str | os.PathLike[str], raw: bool) -> Path:
    """Where the sidecar of ``path`` is: an existing one of the accepted names, else the default for its kind."""
    p = Path(path)
    full = p.with_name(p.name + ".xmp")
    if not raw:
        return full
    adobe = p.with_suffix(".xmp")
    if not adobe.exists() and full.exists():
        return full
    return adobe


def _namespaces(text: str) -> list[tuple[str, str]]:
    import io

    out = []
    for _, ns in ET.iterparse(io.StringIO(text), events=("start-ns",)):
        out.append((ns[0], ns[1]))
    return out


def _merged(text: str, rating: int, label: str) -> str:
    """``text`` (an XMP packet) with xmp:Rating and xmp:Label set; raises ET.ParseError when it is not XML."""
    for prefix, uri in _namespaces(text):
        if prefix and not prefix.startswith("ns"):
            ET.register_namespace(prefix, uri)
    ET.register_namespace("x", _X)
    ET.register_namespace("rdf", _RDF)
    ET.register_namespace("xmp", _XMP)
    body = text
    head = tail = ""
    start, end = text.find("<x:xmpmeta"), text.rfind("</x:xmpmeta>")
    if start >= 0 and end > start:  # keep the xpacket wrapper around the packet as it was
        head, body, tail = text[:start], text[start:end + len("</x:xmpmeta>")], text[end + len("</x:xmpmeta>"):]
    root = ET.fromstring(body)
    desc = root.find(f".//{{{_RDF}}}Description")
    if desc is None:
        rdf = root if root.tag == f"{{{_RDF}}}RDF" else root.find(f".//{{{_RDF}}}RDF")
        if rdf is None:
            raise ET.ParseError("no rdf:RDF element in the packet")
        desc = ET.SubElement(rdf, f"{{{_RDF}}}Description", {f"{{{_RDF}}}about": ""})
    for name in ("Rating", "Label"):
        for child in desc.findall(f"{{{_XMP}}}{name}"):
            desc.remove(child)
    desc.set(f"{{{_XMP}}}Rating", str(int(rating)))
    desc.set(f"{{{_XMP}}}Label", label)
    return head + ET.tostring(root, encoding="unicode") + tail


def write_xmp(path: str | os.PathLike[str], bucket: str, *, raw: bool) -> Path:
    """Write or merge the sidecar of ``path`` for ``bucket`` (a key of :data:`BUCKET_RATING`); returns its path.

    The file is written through a temporary file in the same folder and renamed over the old one only when
    its content changed, so a re-run leaves it byte-identical.

    Raises:
        ImagerankError: the existing sidecar is not well-formed XML or cannot be read or written (nothing was
            replaced); the message names the file and the reason.
    """
    if bucket not in BUCKET_RATING:
        raise ImagerankError(f"xmp: expected a bucket of {sorted(BUCKET_RATING)}, got {bucket!r}")
    dest = sidecar_path(path, raw)
    try:
        old = dest.read_text(encoding="utf-8") if dest.exists() else None
        new = _merged(old if old is not None else _TEMPLATE, BUCKET_RATING[bucket], BUCKET_LABEL[bucket])
        if new == old:
            return dest
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                tmp.unlink()
    except ET.ParseError as e:
        raise ImagerankError(f"xmp: {dest} is not well-formed XML ({e}); left as it is") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ImagerankError(f"xmp: cannot write {dest}: {getattr(e, 'strerror', None) or e}") from e
    return dest
