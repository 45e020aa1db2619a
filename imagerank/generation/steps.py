"""Pipeline steps: the columns of the generation tree, each a ComfyUI workflow in API format.

A step has a ``name`` (unique), an ``order`` (the column: lower runs first; the lowest is the base step), the
workflow (ComfyUI's *API format*: ``{node_id: {"class_type": ..., "inputs": {...}}}``, what the UI saves with
"Export (API)", not the graph format with ``nodes``/``links``), and the node ids that matter:

- ``input_node``: the node whose ``input_name`` input (``image`` for ``LoadImage``) receives the parent image's
  uploaded name. Every step but the base step has one; the base step has none (it starts from nothing).
- ``output_node``: the node that saves the result (``SaveImage``); its outputs in ``/history`` are collected.
  Its ``filename_prefix`` input, when it has one, is replaced by ``imagerank/<step>/<prompt_id>``.
- ``seed_node`` / ``seed_input`` (optional): the node input that takes the job's seed (``KSampler``/``seed``).
  When ``seed_min``/``seed_max`` are set, the seed is mapped into that range (``seed_min + seed % (max-min+1)``)
  for inputs with a narrow range (the weight-free examples put it into a colour or a radius).

Everything is checked when the step is added (:func:`add_step`), with an :class:`InvalidArgumentError` that names
the step, the missing node id or input, and what the workflow has instead::

    from imagerank.generation import steps
    steps.add_step(cat, "face", "face_api.json", input_node="10", output_node="12", seed_node="3")
    steps.add_example_steps(cat)        # the four weight-free workflows below, orders 0..3
    steps.list_steps(cat)               # [PipelineStep, ...] by order
    steps.steps_df(cat)                 # DataFrame: id, name, step_order, input_node, output_node, seed_node, ...
    steps.get_step(cat, "face")         # by name or id; NotFoundError otherwise
    steps.prepare_prompt(step, input_image="imagerank/in_1.png", seed=7, prompt_id=...)  # the dict to POST

The shipped examples (``imagerank/generation/workflows/*.json``, :data:`EXAMPLES`) run on any ComfyUI without
model weights: ``base`` EmptyImage -> SaveImage, ``face`` LoadImage -> ImageSharpen -> SaveImage, ``hand``
LoadImage -> ImageBlur -> SaveImage, ``upscale`` LoadImage -> ImageScaleBy -> SaveImage. To use real checkpoints,
export each stage of your own ComfyUI graph with "Export (API)" and add it with the ids of its ``LoadImage``,
``KSampler`` (seed) and ``SaveImage`` nodes (README, "Generation").
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog import CatalogLike, as_catalog
from ..errors import DatabaseReadOnlyError, InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EXAMPLES",
    "PipelineStep",
    "add_example_steps",
    "add_step",
    "example_workflow",
    "get_step",
    "list_steps",
    "load_workflow",
    "prepare_prompt",
    "require_schema",
    "steps_df",
    "validate_workflow",
]

#: The shipped weight-free examples: name -> (file, order, input_node, output_node, seed_node, seed_input,
#: seed_min, seed_max).
EXAMPLES: dict[str, tuple[str, int, str | None, str, str | None, str | None, int | None, int | None]] = {
    "base": ("base.json", 0, None, "2", "1", "color", 0, 0xFFFFFF),
    "face": ("face.json", 1, "10", "12", "11", "sharpen_radius", 1, 5),
    "hand": ("hand.json", 2, "10", "12", "11", "blur_radius", 1, 5),
    "upscale": ("upscale.json", 3, "10", "12", None, None, None, None),
}
_COLUMNS = ("id, name, step_order, workflow_json, input_node, output_node, seed_node, seed_input, seed_min, "
            "seed_max, workflow_source")


@dataclass(frozen=True)
class PipelineStep:
    """One column of the tree (a ``pipeline_steps`` row).

    Attributes:
        id: row id. name: unique name. order: column position (lower first; the lowest is the base step).
        workflow: the API-format workflow (node id -> node), never modified in place.
        input_node: node id taking the parent image (None for the base step). input_name: that node's input.
        output_node: node id whose saved images are the result. seed_node / seed_input: where the seed goes
        (None: the step takes no seed). seed_min / seed_max: the range seeds are mapped into (None: unmapped).
        source: where the workflow came from (a file name, or None).
    """

    id: int
    name: str
    order: int
    workflow: Mapping[str, Any]
    input_node: str | None
    output_node: str
    seed_node: str | None = None
    seed_input: str | None = None
    seed_min: int | None = None
    seed_max: int | None = None
    source: str | None = None
    input_name: str = "image"

    @property
    def is_base(self) -> bool:
        """True for a step that starts from nothing (no input node)."""
        return self.input_node is None

    def seed_value(self, seed: int) -> int:
        """The value written to the seed input for job seed ``seed`` (>= 0): mapped into
        ``[seed_min, seed_max]`` when both are set, else ``seed`` itself."""
        if self.seed_min is not None and self.seed_max is not None:
            return int(self.seed_min + int(seed) % (self.seed_max - self.seed_min + 1))
        return int(seed)


# ---------------------------------------------------------------------------------------------- workflows
def load_workflow(workflow: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """An API-format workflow from a JSON file path, a JSON string or a mapping (deep-copied).

    Raises:
        InvalidArgumentError: the file is missing or not JSON, the workflow is in the UI's graph format (``nodes``
            and ``links``: export it with "Export (API)"), or a node is not ``{"class_type": str, "inputs": {}}``.
    """
    source = "the workflow"
    if isinstance(workflow, Mapping):
        data: Any = copy.deepcopy(dict(workflow))
    else:
        text = os.fspath(workflow)
        if isinstance(workflow, str) and text.lstrip()[:1] in ("{", "["):
            raw = text
        else:
            source = text
            try:
                raw = Path(text).read_text(encoding="utf-8")
            except OSError as e:
                raise InvalidArgumentError(f"workflow: cannot read {text}: {e.strerror or e}") from e
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise InvalidArgumentError(f"workflow: {source} is not JSON ({e})") from e
    if not isinstance(data, dict) or not data:
        raise InvalidArgumentError(f"workflow: expected a JSON object of nodes in {source}, got {type(data).__name__}"
                                   + (" (empty)" if isinstance(data, dict) else ""))
    if "nodes" in data and "links" in data:
        raise InvalidArgumentError(
            f"workflow: {source} is in ComfyUI's graph (UI) format; save it with 'Export (API)' (API format: "
            '{"<node id>": {"class_type": ..., "inputs": {...}}})'
        )
    for node_id, node in data.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str) \
                or not isinstance(node.get("inputs", {}), dict):
            raise InvalidArgumentError(
                f"workflow: node {node_id!r} in {source} is not an API-format node "
                f'({{"class_type": str, "inputs": {{...}}}}), got {json.dumps(node)[:120]}'
            )
        node.setdefault("inputs", {})
    return data


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def validate_workflow(
    workflow: Mapping[str, Any],
    *,
    name: str,
    input_node: str | None,
    output_node: str,
    seed_node: str | None = None,
    seed_input: str | None = None,
    input_name: str = "image",
) -> None:
    """Check that the node ids of a step exist in ``workflow`` and have the inputs the runner writes.

    Checks: every link ``[node_id, output_index]`` points at a node of the workflow; ``input_node`` exists and has
    the input ``input_name`` with a literal value (not a link); ``output_node`` exists and has an ``images`` input
    (a ``SaveImage``-like node); ``seed_node`` exists and has ``seed_input`` with a literal integer.

    Raises:
        InvalidArgumentError: naming the step, the node id or input that is missing, and what the node has.
    """
    ids = sorted(workflow, key=str)

    def node(role: str, node_id: str) -> Mapping[str, Any]:
        if node_id not in workflow:
            raise InvalidArgumentError(
                f"step {name!r}: {role} {node_id!r} is not a node of the workflow (its nodes: {', '.join(ids)})"
            )
        return workflow[node_id]

    def has_input(role: str, node_id: str, key: str) -> Any:
        n = node(role, node_id)
        inputs = n.get("inputs", {})
        if key not in inputs:
            raise InvalidArgumentError(
                f"step {name!r}: {role} {node_id!r} ({n['class_type']}) has no input {key!r} "
                f"(its inputs: {', '.join(sorted(inputs)) or 'none'})"
            )
        return inputs[key]

    for node_id, n in workflow.items():
        for key, value in n.get("inputs", {}).items():
            if _is_link(value) and value[0] not in workflow:
                raise InvalidArgumentError(
                    f"step {name!r}: input {key!r} of node {node_id!r} ({n['class_type']}) links to node "
                    f"{value[0]!r}, which is not in the workflow (its nodes: {', '.join(ids)})"
                )
    if input_node is not None and _is_link(has_input("input_node", input_node, input_name)):
        raise InvalidArgumentError(
            f"step {name!r}: input {input_name!r} of input_node {input_node!r} is a link; expected the node "
            "that loads the image from a file name (LoadImage)"
        )
    has_input("output_node", output_node, "images")
    if (seed_node is None) != (seed_input is None):
        raise InvalidArgumentError(
            f"step {name!r}: seed_node and seed_input go together (got seed_node={seed_node!r}, "
            f"seed_input={seed_input!r})"
        )
    if seed_node is not None and seed_input is not None:
        value = has_input("seed_node", seed_node, seed_input)
        if _is_link(value) or isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(
                f"step {name!r}: input {seed_input!r} of seed_node {seed_node!r} must hold an integer to replace, "
                f"got {value!r}"
            )


# ---------------------------------------------------------------------------------------------- the table
GENERATION_SCHEMA = 3  # the migration that added the node ids and generation_jobs


def require_schema(col: CatalogLike) -> None:
    """Check that the catalog has the generation tables (a catalog opened read-only is not migrated).

    Raises:
        DatabaseReadOnlyError: an older catalog opened read-only, naming its version and what to do.
    """
    cat = as_catalog(col)
    if not cat.db.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='generation_jobs'"):
        version = int(cat.db.query("PRAGMA user_version")[0][0])
        raise DatabaseReadOnlyError(
            f"the catalog {cat.db.path} has schema version {version} and the generation tree needs "
            f"{GENERATION_SCHEMA}; it was opened read-only, so it was not migrated: open it once where it can be "
            "written (any imagerank command) to migrate it")


def _row_to_step(row: Any) -> PipelineStep:
    return PipelineStep(
        id=int(row["id"]), name=str(row["name"]), order=int(row["step_order"]),
        workflow=json.loads(row["workflow_json"] or "{}"), input_node=row["input_node"],
        output_node=str(row["output_node"] or ""), seed_node=row["seed_node"], seed_input=row["seed_input"],
        seed_min=row["seed_min"], seed_max=row["seed_max"], source=row["workflow_source"],
    )


def list_steps(col: CatalogLike) -> list[PipelineStep]:
    """The workspace's steps by ``order`` (ties by id); steps added before migration 3 (no output node) are
    left out.

    Raises:
        DatabaseReadOnlyError: an older catalog opened read-only (:func:`require_schema`).
    """
    cat = as_catalog(col)
    require_schema(cat)
    rows = cat.db.query(f"SELECT {_COLUMNS} FROM pipeline_steps WHERE output_node IS NOT NULL "
                        "ORDER BY step_order, id")
    return [_row_to_step(r) for r in rows]


def get_step(col: CatalogLike, step: str | int | PipelineStep) -> PipelineStep:
    """One step by name, id or itself (re-read).

    Raises:
        NotFoundError: no such step (the message lists the steps there are).
    """
    cat = as_catalog(col)
    key: Any = step.id if isinstance(step, PipelineStep) else step
    col_name = "id" if isinstance(key, int) and not isinstance(key, bool) else "name"
    rows = cat.db.query(f"SELECT {_COLUMNS} FROM pipeline_steps WHERE {col_name}=? AND output_node IS NOT NULL",
                        (key,))
    if not rows:
        names = [s.name for s in list_steps(cat)]
        raise NotFoundError(f"step {key!r} does not exist (steps: {', '.join(names) or 'none yet'})")
    return _row_to_step(rows[0])


def steps_df(col: CatalogLike) -> pd.DataFrame:
    """The steps as a DataFrame by order: ``id`` int, ``name`` str, ``step_order`` int, ``input_node``,
    ``output_node``, ``seed_node``, ``seed_input`` (str or None), ``seed_min``, ``seed_max`` (int or NaN),
    ``workflow_source`` (str or None), ``nodes`` (int: nodes in the workflow)."""
    import pandas as pd

    out = [{"id": s.id, "name": s.name, "step_order": s.order, "input_node": s.input_node,
            "output_node": s.output_node, "seed_node": s.seed_node, "seed_input": s.seed_input,
            "seed_min": s.seed_min, "seed_max": s.seed_max, "workflow_source": s.source,
            "nodes": len(s.workflow)} for s in list_steps(col)]
    return pd.DataFrame(out, columns=["id", "name", "step_order", "input_node", "output_node", "seed_node",
                                      "seed_input", "seed_min", "seed_max", "workflow_source", "nodes"])


def add_step(
    col: CatalogLike,
    name: str,
    workflow: str | os.PathLike[str] | Mapping[str, Any],
    *,
    output_node: str,
    input_node: str | None = None,
    seed_node: str | None = None,
    seed_input: str | None = None,
    seed_min: int | None = None,
    seed_max: int | None = None,
    order: int | None = None,
) -> PipelineStep:
    """Add a step (a column) after validating its workflow and node ids.

    Args:
        col: the workspace (Catalog or Collection).
        name: unique, non-empty, at most 64 characters, no ``/`` or ``\\`` (it names an output folder).
        workflow: an API-format workflow: a path to its JSON file, a JSON string, or a mapping.
        output_node: id of the node that saves the result.
        input_node: id of the node taking the parent image; None only for the base step (the lowest order).
        seed_node / seed_input: where the job's seed goes (both or neither).
        seed_min / seed_max: map seeds into this inclusive range (both or neither, ``0 <= min <= max``).
        order: the column (an int); default one after the last step (0 for the first).

    Returns:
        The stored :class:`PipelineStep`.

    Raises:
        InvalidArgumentError: a bad name, a duplicate name or order, a workflow that is not API format, a missing
            node or input (named), a base step that is not first, a non-base step without an input node.
    """
    cat = as_catalog(col)
    if not isinstance(name, str) or not name.strip() or len(name) > 64 or any(c in name for c in "/\\\0") \
            or name != name.strip():
        raise InvalidArgumentError(f"name: expected a non-empty step name of at most 64 characters without / or \\ "
                                   f"or surrounding spaces, got {name!r}")
    source = None if isinstance(workflow, Mapping) or str(workflow).lstrip()[:1] in ("{", "[") \
        else Path(os.fspath(workflow)).name
    wf = load_workflow(workflow)
    node_ids = {k: v for k, v in (("output_node", output_node), ("input_node", input_node),
                                  ("seed_node", seed_node)) if v is not None}
    for key, value in node_ids.items():
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{key}: expected a node id as a string (like \"12\"), got {value!r}")
    validate_workflow(wf, name=name, input_node=input_node, output_node=output_node, seed_node=seed_node,
                      seed_input=seed_input)
    if (seed_min is None) != (seed_max is None) or (
            seed_min is not None and seed_max is not None and not (0 <= int(seed_min) <= int(seed_max))):
        raise InvalidArgumentError(f"seed_min/seed_max: expected both or neither, 0 <= seed_min <= seed_max, got "
                                   f"{seed_min!r}/{seed_max!r}")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        raise InvalidArgumentError(f"order: expected an integer, got {order!r}")
    with cat.db.atomic() as conn:
        existing = [_row_to_step(r) for r in conn.execute(
            f"SELECT {_COLUMNS} FROM pipeline_steps WHERE output_node IS NOT NULL ORDER BY step_order, id")]
        if conn.execute("SELECT 1 FROM pipeline_steps WHERE name=?", (name,)).fetchone():
            raise InvalidArgumentError(f"name: a step named {name!r} exists already")
        if order is None:
            order = existing[-1].order + 1 if existing else 0
        if any(s.order == order for s in existing):
            raise InvalidArgumentError(f"order: step {next(s.name for s in existing if s.order == order)!r} has "
                                       f"order {order} already; choose another")
        first = not existing or order < existing[0].order
        if input_node is None and not first:
            raise InvalidArgumentError(
                f"step {name!r}: input_node is required (only the first step, the base, starts from nothing; "
                f"{existing[0].name!r} is first with order {existing[0].order})"
            )
        if input_node is not None and first:
            raise InvalidArgumentError(
                f"step {name!r}: the first step (order {order}) is the base step and takes no input image; "
                "give it input_node=None, or a higher order"
            )
        cur = conn.execute(
            "INSERT INTO pipeline_steps (name, step_order, workflow_json, input_node, output_node, seed_node, "
            "seed_input, seed_min, seed_max, workflow_source) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (name, order, json.dumps(wf, sort_keys=True), input_node, output_node, seed_node, seed_input,
             seed_min, seed_max, source),
        )
        step_id = int(cur.lastrowid or 0)
    return get_step(cat, step_id)


def example_workflow(name: str) -> Path:
    """The path of a shipped example workflow (``base``, ``face``, ``hand``, ``upscale``).

    Raises:
        InvalidArgumentError: another name.
    """
    if name not in EXAMPLES:
        raise InvalidArgumentError(f"name: expected one of {', '.join(EXAMPLES)}, got {name!r}")
    return Path(str(resources.files("imagerank.generation") / "workflows" / EXAMPLES[name][0]))


def add_example_steps(col: CatalogLike) -> list[PipelineStep]:
    """Add the four weight-free example steps (base, face, hand, upscale at orders 0..3) and return them.

    Raises:
        InvalidArgumentError: the workspace has steps already (named).
    """
    cat = as_catalog(col)
    have = list_steps(cat)
    if have:
        raise InvalidArgumentError(f"the workspace has steps already ({', '.join(s.name for s in have)}); "
                                   "add_example_steps only fills an empty pipeline")
    out = []
    for name, (_, order, inp, outp, seed_node, seed_input, lo, hi) in EXAMPLES.items():
        out.append(add_step(cat, name, example_workflow(name), order=order, input_node=inp, output_node=outp,
                            seed_node=seed_node, seed_input=seed_input, seed_min=lo, seed_max=hi))
    return out


def prepare_prompt(step: PipelineStep, *, input_image: str | None, seed: int, prompt_id: str) -> dict[str, Any]:
    """The workflow to POST for one job: a deep copy with the parent image, the seed and the output prefix set.

    Args:
        step: the step. input_image: the name ComfyUI knows the uploaded parent by (``subfolder/name.png``);
            None for the base step. seed: the job's seed (>= 0). prompt_id: the job's id (names the output prefix
            ``imagerank/<step>/<prompt_id>``, so outputs of different jobs never share a name).

    Raises:
        InvalidArgumentError: an input image for the base step, none for another step, a negative seed.
    """
    if (input_image is None) != step.is_base:
        raise InvalidArgumentError(
            f"input_image: step {step.name!r} " + ("is the base step and takes none" if step.is_base
                                                   else "needs the parent's uploaded name") + f", got {input_image!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgumentError(f"seed: expected an integer >= 0, got {seed!r}")
    wf = copy.deepcopy(dict(step.workflow))
    if step.input_node is not None:
        wf[step.input_node]["inputs"][step.input_name] = input_image
    if step.seed_node is not None and step.seed_input is not None:
        wf[step.seed_node]["inputs"][step.seed_input] = step.seed_value(seed)
    out_inputs = wf[step.output_node]["inputs"]
    if "filename_prefix" in out_inputs:
        out_inputs["filename_prefix"] = f"imagerank/{step.name}/{prompt_id}"
    return wf
