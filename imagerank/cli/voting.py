"""Voting from a shell: ``pairs``, ``vote``, ``record``, ``undo``, ``matches``, ``sessions``, ``set-status`` and
``label``. Each invocation is its own voting session (the panel in JupyterLab is the everyday way to vote)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from ._shared import Workspace, describe_match, open_workspace, print_frame, ranking_text

__all__ = ["app"]

app = typer.Typer()

ImageId = Annotated[
    int, typer.Argument(metavar="IMAGE_ID", help="image id (see `imagerank images`)", show_default=False)
]
Voter = Annotated[str | None, typer.Option("--voter", help="who judged (stored with the match)")]


@app.command("pairs")
def pairs(
    workspace: Workspace,
    n: Annotated[int, typer.Option("-n", min=1, help="how many pairs")] = 1,
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="pairing strategy (default: the workspace's strategy setting)")
    ] = None,
) -> int:
    """Print new pairs of image ids to judge.

    One "LEFT RIGHT" pair a line, chosen by the pairing strategy; feed them to `imagerank vote`.
    """
    with open_workspace(workspace) as col:
        for left, right in col.next_pairs(n, strategy=strategy):
            typer.echo(f"{left} {right}")
    return 0


@app.command("vote")
def vote(
    workspace: Workspace,
    left: Annotated[int, typer.Argument(metavar="LEFT", help="image id shown on the left", show_default=False)],
    right: Annotated[int, typer.Argument(metavar="RIGHT", help="image id shown on the right", show_default=False)],
    outcome: Annotated[
        Literal["left", "right", "draw", "skip"], typer.Argument(metavar="OUTCOME", help="the judgement")
    ],
    voter: Voter = None,
    decision_ms: Annotated[
        float | None, typer.Option("--decision-ms", min=0, help="time taken to decide, in milliseconds")
    ] = None,
) -> int:
    """Record one A-vs-B judgement.

    OUTCOME is left or right (that side wins), draw, or skip (recorded, not rated).
    Ratings change at once (OpenSkill Plackett-Luce); `imagerank undo` takes it back.
    """
    with open_workspace(workspace) as col:
        match = col.vote(left, right, outcome, decision_ms=decision_ms, voter=voter)
    typer.echo(describe_match(match))
    return 0


@app.command("record")
def record(
    workspace: Workspace,
    image_ids: Annotated[
        list[int], typer.Argument(metavar="IMAGE_IDS", help="two or more image ids, best first", show_default=False)
    ],
    ranks: Annotated[
        str | None,
        typer.Option("--ranks", metavar="R,R,...", help="rank per image, 0 best, ties share a rank (default 0,1,2...)"),
    ] = None,
    voter: Voter = None,
) -> int:
    """Record an N-way ranking (best of a burst ...).

    The ids best first, or in any order with explicit --ranks.
    """
    try:
        rank_list = [int(r) for r in ranks.split(",")] if ranks else None
    except ValueError:
        raise typer.BadParameter(f"expected whole numbers separated by commas, got {ranks!r}",
                                 param_hint="--ranks") from None
    with open_workspace(workspace) as col:
        match = col.record_match(image_ids, rank_list, voter=voter)
    typer.echo(describe_match(match))
    return 0


@app.command("undo")
def undo(
    workspace: Workspace,
    match: Annotated[
        int | None, typer.Option("--match", metavar="ID", help="the match to undo (see `imagerank matches`)")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", metavar="SOURCE",
                     help="undo every kept match from this source (simulated, import, suggestion, user)"),
    ] = None,
) -> int:
    """Undo a match exactly, or every match from one source.

    The last kept match of any session, or --match ID, or with --source simulated every simulated vote;
    ratings become as if they never happened (the log is replayed). Exit status 1 when there is nothing to undo.
    """
    if match is not None and source is not None:
        raise typer.BadParameter("give --match or --source, not both", param_hint="--source")
    if source is not None:
        with open_workspace(workspace) as col:
            n = col.votes.undo_source(source)
            has_prior = n and col.prior.stored_priors > 0  # counted when the workspace was opened
        if not n:
            typer.echo(f"nothing to undo: no kept matches with source {source!r}")
            return 1
        typer.echo(f"undid {n} matches with source {source!r}; ratings replayed from the votes left")
        if has_prior:
            typer.echo("the learned prior was fitted with them too: `imagerank prior WORKSPACE` refits it on the "
                       "votes left, `imagerank prior WORKSPACE --clear` removes it")
        return 0
    with open_workspace(workspace) as col:
        undone = col.undo(match, any_session=True)
    if undone is None:
        typer.echo("nothing to undo")
        return 1
    typer.echo(describe_match(undone, "undid"))
    return 0


@app.command("matches")
def matches(
    workspace: Workspace,
    last: Annotated[int, typer.Option("-n", "--last", min=0, help="show the last N matches (0: all)")] = 20,
    include_undone: Annotated[bool, typer.Option("--include-undone", help="list undone matches too")] = False,
) -> int:
    """List the vote log, one match a line.

    Columns: match_id, kind, rated, session_id, voter, created_at, ranking (best first).
    """
    import pandas as pd

    with open_workspace(workspace, reads_only=True) as col:
        df = col.matches_df(include_undone)
    rows = [
        {
            "match_id": int(match_id), "kind": g["kind"].iloc[0], "rated": bool(g["rated"].iloc[0]),
            "undone": bool(g["undone"].iloc[0]), "session_id": g["session_id"].iloc[0],
            "voter": g["voter"].iloc[0], "created_at": g["created_at"].iloc[0],
            "ranking": ranking_text(g["image_id"].astype(int).tolist(), g["rank"].astype(int).tolist()),
        }
        for match_id, g in df.groupby("match_id", sort=True)
    ]
    table = pd.DataFrame(rows)
    if not include_undone and not table.empty:
        table = table.drop(columns="undone")
    print_frame(table.tail(last) if last else table, empty="no matches")
    return 0


@app.command("sessions")
def sessions(workspace: Workspace) -> int:
    """List the voting sessions that recorded matches.

    Columns: session_id, voter, kept and undone matches, first and last vote.
    """
    import pandas as pd

    with open_workspace(workspace, reads_only=True) as col:
        df = col.matches_df(include_undone=True).drop_duplicates("match_id")
    rows = [
        {
            "session_id": int(session_id), "voter": g["voter"].iloc[0], "kept": int((g["undone"] == 0).sum()),
            "undone": int((g["undone"] != 0).sum()), "first": g["created_at"].min(), "last": g["created_at"].max(),
        }
        for session_id, g in df.groupby("session_id", sort=True)
    ]
    print_frame(pd.DataFrame(rows), empty="no sessions with matches")
    return 0


@app.command("set-status")
def set_status(
    workspace: Workspace,
    image_id: ImageId,
    status: Annotated[
        Literal["active", "missing", "corrupt", "rejected"],
        typer.Argument(metavar="STATUS", help="the new status"),
    ],
    reason: Annotated[str | None, typer.Option("--reason", help="why (stored with the status)")] = None,
) -> int:
    """Set an image's status (reject one, or restore it).

    `rejected` takes an image out of pairing and the leaderboard; `active` brings it back.
    """
    with open_workspace(workspace) as col:
        col.images.set_status(image_id, status, reason)
    typer.echo(f"image {image_id}: {status}")
    return 0


@app.command("label")
def label(
    workspace: Workspace,
    image_id: ImageId,
    label: Annotated[Literal["good", "bad", "flag"], typer.Argument(metavar="LABEL", help="the label")],
    note: Annotated[str | None, typer.Option("--note", help="a note stored with the label")] = None,
) -> int:
    """Attach a label (good, bad or flag) to an image."""
    with open_workspace(workspace) as col:
        label_id = col.images.add_label(image_id, label, note=note)
    typer.echo(f"label {label_id}: image {image_id} {label}")
    return 0
