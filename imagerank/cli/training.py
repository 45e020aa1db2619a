"""Training commands: ``train``, ``prior``, ``train-crops``, ``import-selections``, ``import-crops``, ``models``,
``evaluate`` and ``apply-prior``.

Exit status 0 when everything was imported / trained, 1 when an import rejected some rows (reported one per line),
2 on an imagerank error (no votes, unreadable file, unknown model ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer

from ._shared import Workspace, open_workspace, print_frame

if TYPE_CHECKING:
    from ..training.crops import CropModel
    from ..training.ranker import Ranker

__all__ = ["app"]

app = typer.Typer()

FeaturesOption = Annotated[
    str, typer.Option("--features", help="auto, cheap, or embeddings:<model>__<pretrained>")
]
ModelName = Annotated[str, typer.Argument(metavar="NAME", help="model name under WS/models (see `imagerank models`)")]
Base = Annotated[
    Path | None, typer.Option("--base", help="folder relative paths are resolved against (default: the CSV's folder)")
]


@app.command("train")
def train(
    workspace: Workspace,
    features: FeaturesOption = "auto",
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="passes over the judgements")] = 30,
    name: Annotated[str, typer.Option("--name", help="model name under WS/models")] = "ranker",
    seed: Annotated[int, typer.Option("--seed", help="seeds the split, the initialisation and the batches")] = 0,
    network: Annotated[
        Literal["mlp", "linear"], typer.Option("--network", help="the scoring network")
    ] = "mlp",
    accelerator: Annotated[str, typer.Option("--accelerator", help="cpu, cuda, mps or auto")] = "auto",
    apply_prior: Annotated[
        bool, typer.Option("--apply-prior", help="turn the scores into prior ratings afterwards")
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
) -> int:
    """Train the ranker on the votes and evaluate it.

    Saved to WORKSPACE/models/NAME; evaluated against OpenSkill on held-out judgements.
    """
    from ..training.evaluate import evaluate_ranker
    from ..training.ranker import RankerConfig, train_ranker

    config = RankerConfig(max_epochs=epochs, seed=seed, network=network, accelerator=accelerator)
    with open_workspace(workspace) as col:
        ranker = cast("Ranker", train_ranker(col, features, config, name=name, progress=not no_progress))
        typer.echo(repr(ranker))
        typer.echo(f"saved to {col.models_dir / name}")
        typer.echo(str(evaluate_ranker(col, ranker)))
        if apply_prior:
            typer.echo(str(col.apply_prior(ranker)))
    return 0


@app.command("prior")
def prior(
    workspace: Workspace,
    features: Annotated[
        str | None,
        typer.Option("--features",
                     help="auto, cheap or embeddings:<model>__<pretrained> (default: the prior_features setting)"),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove every learned prior and replay the votes")] = False,
) -> int:
    """Refit the live prior now (or --clear priors).

    The live prior is a linear Bradley-Terry model on the features, used as every image's OpenSkill prior.
    """
    with open_workspace(workspace) as col:
        if clear:
            typer.echo(f"learned priors removed; replay changed {col.clear_prior()} ratings")
        else:
            typer.echo(str(col.refit_prior(features)))
    return 0


@app.command("apply-prior")
def apply_prior(
    workspace: Workspace,
    name: ModelName = "ranker",
    max_comparisons: Annotated[
        int, typer.Option("--max-comparisons", min=0, help="only images with at most N comparisons get the prior")
    ] = 3,
) -> int:
    """Use a saved ranker's scores as prior ratings.

    For images with at most --max-comparisons comparisons; replaces the live prior.
    """
    from ..training.registry import load_model

    with open_workspace(workspace) as col:
        typer.echo(str(col.apply_prior(load_model(col, name), max_comparisons=max_comparisons)))
    return 0


@app.command("train-crops")
def train_crops(
    workspace: Workspace,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="passes over the crops")] = 20,
    name: Annotated[str, typer.Option("--name", help="model name under WS/models")] = "crops",
    seed: Annotated[int, typer.Option("--seed", help="seeds the split and the initialisation")] = 0,
    image_size: Annotated[int, typer.Option("--image-size", min=8, help="square input side in pixels")] = 96,
    accelerator: Annotated[str, typer.Option("--accelerator", help="cpu, cuda, mps or auto")] = "auto",
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
) -> int:
    """Train the crop proposer on the crops.

    Saved to WORKSPACE/models/NAME; prints its held-out metrics.
    """
    from ..training.crops import CropConfig, train_crop_proposer

    config = CropConfig(max_epochs=epochs, seed=seed, image_size=image_size, accelerator=accelerator)
    with open_workspace(workspace) as col:
        model = cast("CropModel", train_crop_proposer(col, config, name=name, progress=not no_progress))
    typer.echo(repr(model))
    for key, value in model.metadata.get("metrics", {}).items():
        typer.echo(f"{key:>24}: {value:.4f}")
    return 0


@app.command("models")
def models(workspace: Workspace) -> int:
    """List the saved models.

    Name, kind, feature set, when saved and key metrics of each model in WORKSPACE/models.
    """
    from ..training.registry import list_models

    with open_workspace(workspace, reads_only=True) as col:
        print_frame(list_models(col), empty="no models saved yet")
    return 0


@app.command("evaluate")
def evaluate(workspace: Workspace, name: ModelName = "ranker") -> int:
    """Evaluate a saved model on what it held out.

    A ranker against OpenSkill, a crop proposer by box overlap.
    """
    from ..training.crops import evaluate_crop_model
    from ..training.evaluate import evaluate_ranker
    from ..training.ranker import Ranker
    from ..training.registry import load_model

    with open_workspace(workspace) as col:
        model = load_model(col, name)
        rep = evaluate_ranker(col, model) if isinstance(model, Ranker) else evaluate_crop_model(col, model)
    typer.echo(str(rep))
    return 0


@app.command("import-selections")
def import_selections(
    workspace: Workspace,
    csv: Annotated[
        Path, typer.Argument(metavar="CSV", help="selection log: candidates (separated by |) and the chosen one")
    ],
    base: Base = None,
    force: Annotated[bool, typer.Option("--force", help="import again a file imported before")] = False,
) -> int:
    """Import a selection log CSV as N-way matches.

    Each row: the candidates (separated by |) and the chosen one.
    Exit status 1 when some rows were rejected (each reported with its line); the others are imported.
    """
    from ..training.imports import import_selection_log

    with open_workspace(workspace) as col:
        rep = import_selection_log(col, csv, base=base, force=force)
    typer.echo(str(rep))
    return 0 if rep.ok else 1


@app.command("import-crops")
def import_crops(
    workspace: Workspace,
    csv: Annotated[Path, typer.Argument(metavar="CSV", help="crop log: path, x, y, w, h (pixels or normalised)")],
    base: Base = None,
    units: Annotated[
        Literal["px", "norm"] | None,
        typer.Option("--units", help="force the units of every row (default: detect)"),
    ] = None,
) -> int:
    """Import a crop log CSV into the crops table.

    Each row: path and box (x, y, w, h) in pixels or normalised.
    Exit status 1 when some rows were rejected (each reported with its line); the others are imported.
    """
    from ..training.imports import import_crop_log

    with open_workspace(workspace) as col:
        rep = import_crop_log(col, csv, base=base, units=units)
    typer.echo(str(rep))
    return 0 if rep.ok else 1
