"""The nodes :mod:`imagerank.generation.emulator` runs, with Pillow: ``EmptyImage``, ``LoadImage``,
``ImageSharpen``, ``ImageBlur``, ``ImageScaleBy``, ``ImageInvert``, ``SaveImage`` (their inputs as in ComfyUI's
``nodes.py`` / ``comfy_extras/nodes_post_processing.py``; the pixels are close, not identical)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter, ImageOps

__all__ = ["execution_order", "run_node"]


def execution_order(prompt: dict[str, Any]) -> list[str]:
    """The node ids of an API-format ``prompt`` with every node after the nodes its inputs link to."""
    seen: list[str] = []

    def visit(n: str) -> None:
        if n in seen:
            return
        for v in prompt[n].get("inputs", {}).values():
            if isinstance(v, list) and len(v) == 2 and v[0] in prompt:
                visit(v[0])
        seen.append(n)

    for n in prompt:
        visit(n)
    return seen


def run_node(node: dict[str, Any], values: dict[str, Image.Image], *, resolve_input: Callable[[str], Path],
             output_dir: Path, counter: dict[str, int]) -> Any:
    """Run one node the way ComfyUI's node of that class does, with Pillow.

    Args:
        node: ``{"class_type", "inputs"}``. values: the images made by earlier nodes, by node id.
        resolve_input: a ``LoadImage`` name (``sub/name.png``, or ``name [output]``) to its file.
        output_dir: where ``SaveImage`` writes (``<prefix folder>/<stem>_00001_.png``, counted in ``counter``).

    Returns:
        An RGB image, or for ``SaveImage`` its ui output ``{"images": [{"filename", "subfolder", "type"}]}``.

    Raises:
        RuntimeError: a class the emulator does not implement. OSError / KeyError / ValueError: bad inputs.
    """
    cls, inp = node["class_type"], node.get("inputs", {})

    def image(key: str = "image") -> Image.Image:
        return values[inp[key][0]]

    if cls == "EmptyImage":
        c = int(inp.get("color", 0))
        return Image.new("RGB", (int(inp["width"]), int(inp["height"])), ((c >> 16) & 255, (c >> 8) & 255, c & 255))
    if cls == "LoadImage":
        with Image.open(resolve_input(str(inp["image"]))) as im:
            return im.convert("RGB")
    if cls == "ImageSharpen":
        return image().filter(ImageFilter.UnsharpMask(radius=int(inp["sharpen_radius"]),
                                                      percent=int(100 * float(inp["alpha"]))))
    if cls == "ImageBlur":
        return image().filter(ImageFilter.GaussianBlur(float(inp["sigma"])))
    if cls == "ImageScaleBy":
        im = image()
        s = float(inp["scale_by"])
        return im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.BICUBIC)
    if cls == "ImageInvert":
        return ImageOps.invert(image())
    if cls == "SaveImage":
        prefix = str(inp.get("filename_prefix", "ComfyUI"))
        sub, _, stem = prefix.rpartition("/")
        key = f"{sub}/{stem}"
        counter[key] = counter.get(key, 0) + 1
        name = f"{stem}_{counter[key]:05d}_.png"
        folder = (output_dir / sub).resolve()
        if not folder.is_relative_to(output_dir.resolve()):  # ComfyUI refuses a prefix leaving the output folder
            raise ValueError(f"Saving image outside the output folder is not allowed: {prefix}")
        folder.mkdir(parents=True, exist_ok=True)
        image("images").save(folder / name)
        return {"images": [{"filename": name, "subfolder": sub, "type": "output"}]}
    raise RuntimeError(f"the emulator has no implementation of {cls}")
