"""Auto-pick from the command line: ``autopick`` (one image per subject of a CSV) and ``autopick-train`` (the head
on the user's labels)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ._shared import Workspace, open_workspace, print_frame, usage_error

__all__ = ["app"]

app = typer.Typer()


def _scorer(clip: str, head: str | None, pyiqa: str | None, pyiqa_weights: Path | None, ws_models: object) -> object:
    from ..autopick import ClipAestheticScorer, PyiqaScorer, load_trained_head

    if pyiqa:
        return PyiqaScorer(pyiqa, pyiqa_weights)
    if head is None:
        raise usage_error("give the aesthetic head: --head FILE (published LAION weights) or --head model:NAME "
                          "(trained with autopick-train), or --pyiqa METRIC", "--head")
    if head.startswith("model:"):
        net, meta = load_trained_head(ws_models, head.split(":", 1)[1])  # type: ignore[arg-type]
        return ClipAestheticScorer(clip or str(meta["clip"]).replace("__", ":", 1), net)
    return ClipAestheticScorer(clip or "ViT-L-14:openai", head)


@app.command("autopick")
def autopick(
    workspace: Workspace,
    subjects: Annotated[Path, typer.Argument(metavar="SUBJECTS",
                                                     help="CSV with a 'name' column (and optionally 'category')")],
    source: Annotated[str, typer.Option("--source", help="commons, or folder:DIR (one folder per subject)")] = (
        "commons"),
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=10.0,
                                             help="lowest acceptable score, 0-10")] = 5.0,
    redo: Annotated[bool, typer.Option("--all", help="also redo subjects already picked or flagged")] = False,
    head: Annotated[str | None, typer.Option("--head", help="aesthetic head: a weights file, or model:NAME")] = None,
    clip: Annotated[str, typer.Option("--clip", help="CLIP model MODEL:PRETRAINED (default ViT-L-14:openai, "
                                                     "or the trained head's)")] = "",
    pyiqa: Annotated[str | None, typer.Option("--pyiqa", help="score with this pyiqa metric instead")] = None,
    pyiqa_weights: Annotated[Path | None, typer.Option("--pyiqa-weights", help="the metric's weights file")] = None,
    contact: Annotated[str, typer.Option("--contact", envvar="IMAGERANK_CONTACT",
                                         help="your e-mail or URL for the User-Agent (Wikimedia policy)")] = "",
    api: Annotated[str, typer.Option("--api", help="the MediaWiki API endpoint")] = (
        "https://commons.wikimedia.org/w/api.php"),
    rate: Annotated[int, typer.Option("--rate", min=0, help="requests per hour (0: no limit)")] = 500,
    thumb_width: Annotated[int, typer.Option("--thumb-width", help="a standard thumbnail width")] = 330,
    exclude_licence: Annotated[list[str] | None, typer.Option(
        "--exclude-licence", help="never pick this licence (prefix, e.g. 'CC BY-NC'; 'unknown'); repeatable")] = None,
    no_demote: Annotated[bool, typer.Option("--no-demote", help="no CLIP text-image demotion")] = False,
) -> int:
    """Pick one image per subject from Wikimedia Commons or a folder; flag the rest with reasons.

    Prints one line per batch of 50 and the flagged subjects. Exit status 1 when some subjects ended in error.
    """
    from ..autopick import CommonsSource, FolderSource, PickConfig, PickStore, auto_pick, read_subjects

    subs, problems = read_subjects(subjects)
    for p in problems:
        typer.echo(f"{subjects}: {p}", err=True)
    with open_workspace(workspace) as col:
        cat = col.catalog
        if source == "commons":
            src: object = CommonsSource(contact, api=api, thumb_width=thumb_width, per_hour=rate,
                                        state_dir=os.path.join(cat.root, "autopick"))
        elif source.startswith("folder:"):
            src = FolderSource(source.split(":", 1)[1])
        else:
            raise usage_error(f"expected 'commons' or 'folder:DIR', got {source!r}", "--source")
        scorer = _scorer(clip, head, pyiqa, pyiqa_weights, cat)
        cfg = PickConfig(threshold=threshold, excluded_licences=tuple(exclude_licence or ()),
                         demote_off_subject=not no_demote)
        report = auto_pick(cat, subs, src, scorer, cfg, redo=redo,  # type: ignore[arg-type]
                           on_batch=lambda r: typer.echo(
                               f"batch {r['batch']}: {r['status']}, processed {r['processed_count']}, updated "
                               f"{r['updated_count']} (picked {r['picked']}, flagged {r['flagged']}, errors "
                               f"{r['errors']}, skipped {r['skipped']})"))
        if hasattr(src, "close"):
            src.close()
        c = report.counts()
        typer.echo(f"picked {c['picked']}, flagged {c['flagged']}, errors {c['error']}, skipped {c['skipped']}")
        df = PickStore(cat).subjects_df()
        bad = df[df["name"].isin([s.name for s in subs]) & df["status"].isin(["flagged", "error"])]
        if len(bad):
            print_frame(bad, ["name", "status", "reason"])
    return 1 if c["error"] else 0


@app.command("autopick-train")
def autopick_train(
    workspace: Workspace,
    clip: Annotated[str, typer.Option("--clip", help="CLIP model MODEL:PRETRAINED the labels were embedded with")],
    head: Annotated[Path | None, typer.Option("--head", help="start from this head file (default a fresh MLP)")] = (
        None),
    name: Annotated[str, typer.Option("--name", help="registry name")] = "aesthetic",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 60,
) -> int:
    """Train the aesthetic head on the good/bad labels and votes; print the held-out Spearman before and after."""
    from ..autopick import AestheticHead, HeadConfig, HeadFitConfig, load_head, train_head
    from ..features.pipeline import parse_embedding_spec

    spec = parse_embedding_spec(clip)
    clip_name = spec.sidecar_name.split("/", 1)[1]
    with open_workspace(workspace) as col:
        from ..autopick import PickStore

        X, _, _ = PickStore(col.catalog).labelled_embeddings(clip_name)
        start = load_head(head) if head else AestheticHead(HeadConfig("mlp", int(X.shape[1]) if X.size else 768))
        out = train_head(col.catalog, start, clip_name, HeadFitConfig(max_epochs=epochs), name=name)
    m = out.metadata["metrics"]
    typer.echo(f"saved models/{name}: held-out Spearman {m['val_spearman']:.3f} "
               f"(before training {m['val_spearman_before']:.3f}), {out.metadata['data']}")
    return 0
