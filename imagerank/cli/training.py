"""Training sub-commands of the ``imagerank`` console script (registered when :mod:`imagerank.cli` loads plugins).

- ``imagerank train WS [--features auto|cheap|embeddings:<model>__<pretrained>] [--epochs N] [--name NAME]
  [--seed S] [--apply-prior]``: train the ranker on the votes, save it to ``WS/models/NAME``, print the evaluation.
- ``imagerank train-crops WS [--epochs N] [--name NAME]``: train the crop proposer on the crops.
- ``imagerank prior WS [--features F] [--clear]``: refit the live prior (linear Bradley-Terry on the features, as
  every image's OpenSkill prior) from the votes now, or remove every learned prior.
- ``imagerank import-selections WS CSV [--force]`` and ``imagerank import-crops WS CSV [--units px|norm]``.

Exit status 0 when everything was imported / trained, 1 when some rows were rejected (reported one per line),
2 on an imagerank error (no votes, unreadable file ...).
"""

from __future__ import annotations

import argparse

from .main import _open, subcommand


@subcommand("train", "train the ranker on the votes (saved to WS/models/NAME) and print its evaluation")
def _train(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("--features", default="auto", help="auto (default), cheap, or embeddings:<model>__<pretrained>")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--name", default="ranker", help="model name under WS/models (default ranker)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--network", choices=["mlp", "linear"], default="mlp")
    p.add_argument("--apply-prior", action="store_true", help="turn the scores into prior ratings afterwards")
    p.add_argument("--no-progress", action="store_true")

    def run(ns: argparse.Namespace) -> int:
        from ..training.evaluate import evaluate_ranker
        from ..training.ranker import train_ranker

        col = _open(ns)
        ranker = train_ranker(col, ns.features, max_epochs=ns.epochs, seed=ns.seed, network=ns.network,
                              name=ns.name, progress=not ns.no_progress)
        print(ranker)
        print(f"saved to {col.models_dir / ns.name}")
        print(evaluate_ranker(col, ranker))  # type: ignore[arg-type]
        if ns.apply_prior:
            print(col.apply_prior(ranker))
        return 0

    p.set_defaults(run=run)


@subcommand("prior", "refit the live prior from the votes now (or --clear every learned prior)")
def _prior(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("--features", default=None,
                   help="auto, cheap or embeddings:<model>__<pretrained> (default: the prior_features setting)")
    p.add_argument("--clear", action="store_true", help="remove every learned prior and replay the votes")

    def run(ns: argparse.Namespace) -> int:
        col = _open(ns)
        if ns.clear:
            print(f"learned priors removed; replay changed {col.clear_prior()} ratings")
        else:
            print(col.refit_prior(ns.features))
        return 0

    p.set_defaults(run=run)


@subcommand("train-crops", "train the crop proposer on the collection's crops (saved to WS/models/NAME)")
def _train_crops(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--name", default="crops")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=96)

    def run(ns: argparse.Namespace) -> int:
        from ..training.crops import train_crop_proposer

        col = _open(ns)
        model = train_crop_proposer(col, max_epochs=ns.epochs, seed=ns.seed, name=ns.name,
                                    image_size=ns.image_size)
        print(model)
        for k, v in model.metadata.get("metrics", {}).items():  # type: ignore[union-attr]
            print(f"{k:>24}: {v:.4f}")
        return 0

    p.set_defaults(run=run)


@subcommand("import-selections", "import a selection log CSV (candidates + chosen) as N-way matches")
def _import_selections(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("csv")
    p.add_argument("--base", help="folder relative paths are resolved against (default: the CSV's folder)")
    p.add_argument("--force", action="store_true", help="import again a file imported before")

    def run(ns: argparse.Namespace) -> int:
        from ..training.imports import import_selection_log

        rep = import_selection_log(_open(ns), ns.csv, base=ns.base, force=ns.force)
        print(rep)
        return 0 if rep.ok else 1

    p.set_defaults(run=run)


@subcommand("import-crops", "import a crop log CSV (path + box in pixels or normalised) into the crops table")
def _import_crops(p: argparse.ArgumentParser) -> None:
    p.add_argument("workspace")
    p.add_argument("csv")
    p.add_argument("--base", help="folder relative paths are resolved against (default: the CSV's folder)")
    p.add_argument("--units", choices=["px", "norm"], help="force the units of every row (default: detect)")

    def run(ns: argparse.Namespace) -> int:
        from ..training.imports import import_crop_log

        rep = import_crop_log(_open(ns), ns.csv, base=ns.base, units=ns.units)
        print(rep)
        return 0 if rep.ok else 1

    p.set_defaults(run=run)
