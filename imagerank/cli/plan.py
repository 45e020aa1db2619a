"""Plans in plain words: ``plan`` (intent → plan → preview → run on confirmation) and ``explain`` (why an image was
picked or not)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from ..errors import NotFoundError
from ._shared import Workspace, open_workspace, usage_error

__all__ = ["app"]

app = typer.Typer()


@app.command("plan")
def plan(
    workspace: Workspace,
    intent: Annotated[str, typer.Argument(metavar="INTENT", help="what you want, in plain words (quoted)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan and what it would do; run nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="run without asking")] = False,
    parser: Annotated[
        Literal["auto", "rules", "llm"],
        typer.Option("--parser", help="rules (offline), llm (llm_url / IMAGERANK_LLM_URL) or auto"),
    ] = "auto",
) -> int:
    """Turn INTENT into a plan of whitelisted actions, show it with counts per step and a sample of files, and run
    it on confirmation (--yes runs at once; --dry-run never runs). The phrasings the offline parser knows are in
    the README ("Plans in plain words"). Exit 1 when nothing ran (dry run, or not confirmed)."""
    from ..cull.intents import execute, plan_intent

    with open_workspace(workspace) as col:
        shown = plan_intent(col, intent, parser=parser)
        typer.echo(str(shown))
        if dry_run:
            typer.echo("dry run: nothing was changed")
            return 1
        if not yes and not typer.confirm("run this plan?", default=False):
            typer.echo("not run")
            return 1
        done = execute(shown.plan, col, parser=shown.parser)  # exactly the plan shown, never a re-parse
        typer.echo(f"ran as plan {done.plan_id}: {json.dumps(done.result, sort_keys=True)}")
    return 0


@app.command("explain")
def explain(
    workspace: Annotated[Path, typer.Argument(metavar="WORKSPACE", help="the workspace, or a cull's output folder "
                                                                 "(with manifest.jsonl)")],
    path: Annotated[str, typer.Argument(metavar="PATH", help="the image file (or its image id)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the machine-readable reasons as JSON")] = False,
    polish: Annotated[bool, typer.Option("--polish", help="let the LLM (llm_url) rephrase the sentence; the "
                                                          "facts never change")] = False,
) -> int:
    """Why the image at PATH was picked (or not): its bucket and the rule that decided, sharpness within its burst,
    clipping, duplicates, rating and uncertainty, the learned score and its weight, as a sentence (or --json).
    WORKSPACE may also be the output folder of `imagerank cull` (no workspace): PATH is then a file of the culled
    folder."""
    if polish and (workspace / "manifest.jsonl").is_file() and not (workspace / "imagerank.db").exists():
        raise usage_error("--polish needs a workspace (its llm_url setting)", "--polish")
    if (workspace / "manifest.jsonl").is_file() and not (workspace / "imagerank.db").exists():
        facts = _explain_cull_output(workspace, path)
    else:
        with open_workspace(workspace, reads_only=True) as col:
            image_id = col.images.id_of(os.path.abspath(path))
            if image_id is None and path.isdigit() and not Path(path).exists():
                image_id = int(path)
            if image_id is None:
                raise NotFoundError(f"explain: expected an image of this workspace, got {path!r} (not in the catalog)")
            facts = col.explain(image_id, polish=polish)
    text = facts.get("polished", facts["sentence"])
    typer.echo(json.dumps(facts, indent=2, sort_keys=True, default=str) if as_json else text)
    return 0


def _explain_cull_output(out: Path, path: str) -> dict[str, object]:
    import pandas as pd

    from ..cull.intents import explain_record
    from ..errors import InvalidArgumentError

    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        manifest = pd.read_json(out / "manifest.jsonl", lines=True, dtype=False)
    except (OSError, ValueError) as e:
        raise InvalidArgumentError(f"explain: expected a cull output folder with summary.json and manifest.jsonl, "
                                   f"got {out} ({e})") from None
    rel, full, root = path, os.path.abspath(path), summary.get("input")
    if root and full.startswith(str(root) + os.sep):  # a path of the culled folder; else the manifest's own path
        rel = os.path.relpath(full, root).replace(os.sep, "/")
    return explain_record(manifest, rel, max_clip=summary.get("thresholds", {}).get("cull_max_clip"))
