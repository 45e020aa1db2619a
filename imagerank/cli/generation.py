"""The generation tree: ``generate`` (run ComfyUI jobs), ``steps``, ``add-step``, ``tree`` and ``jobs``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._shared import Workspace, open_workspace, print_frame

__all__ = ["app"]

app = typer.Typer()


@app.command("generate")
def generate(
    workspace: Workspace,
    server: Annotated[list[str], typer.Option(
        "--server", metavar="URL", help="a ComfyUI server, like http://127.0.0.1:8188; repeat it for several "
        "(one job in flight on each)")],
    max_jobs: Annotated[int | None, typer.Option("--max-jobs", min=1, metavar="K",
                                                 help="take at most K jobs, then stop")] = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="stop when there is nothing left to do (T final "
                                             "images and no eligible parent); otherwise wait for work")] = False,
    policy: Annotated[str | None, typer.Option("--policy", help="raffle, thompson or uniform (default: the "
                                               "workspace's generation.job_policy)")] = None,
    websocket: Annotated[bool, typer.Option("--websocket/--no-websocket",
                                            help="listen to ComfyUI's events (polling alone works too)")] = True,
) -> int:
    """Grow the generation tree on ComfyUI: pick the next job from the votes, run it, store the result.

    Jobs are kept in the catalog; stopping (Ctrl-C) or a crash loses nothing: the next run finds jobs still on a
    server by their prompt id and submits again what a restarted server lost. Prints what the run did (jobs done,
    failed, jobs per minute), and one line per job as it ends. Exit status 1 when a worker stopped on an
    unexpected error.
    """
    from ..generation.runner import Runner

    def tell(job: Any, status: str, detail: str) -> None:
        what = f"image {detail}" if status == "done" else detail
        typer.echo(f"job {job.id} {job.step}" + (f" (parent {job.parent_id})" if job.parent_id else "")
                   + f": {status}: {what}")

    with open_workspace(workspace) as col:
        runner = Runner(col, server, max_jobs=max_jobs, until_idle=until_idle, policy=policy, websocket=websocket,
                        on_job=tell)
        try:
            report = runner.run()
        except KeyboardInterrupt:
            typer.echo(f"stopped: {runner.report}", err=True)
            return 130
    typer.echo(str(report))
    return 1 if report.errors else 0


@app.command("steps")
def steps(
    workspace: Workspace,
    add_examples: Annotated[bool, typer.Option(
        "--add-examples", help="add the four weight-free example steps (base, face, hand, upscale) first")] = False,
) -> int:
    """List the pipeline steps (columns of the tree) in order."""
    from ..generation import steps as S

    with open_workspace(workspace, reads_only=not add_examples) as col:
        if add_examples:
            S.add_example_steps(col)
        print_frame(S.steps_df(col), ["id", "name", "step_order", "input_node", "output_node", "seed_node",
                                      "seed_input", "workflow_source"], empty="no steps yet")
    return 0


@app.command("add-step")
def add_step(
    workspace: Workspace,
    name: Annotated[str, typer.Argument(metavar="NAME", help="the step's name (unique)", show_default=False)],
    workflow: Annotated[Path, typer.Argument(metavar="WORKFLOW", show_default=False,
                                             help="the ComfyUI workflow in API format (Export (API)), a JSON file")],
    output_node: Annotated[str, typer.Option("--output-node", metavar="ID", help="node id that saves the result")],
    input_node: Annotated[str | None, typer.Option("--input-node", metavar="ID",
                                                   help="node id that loads the parent image (LoadImage); "
                                                   "leave out for the first, base step")] = None,
    seed_node: Annotated[str | None, typer.Option("--seed-node", metavar="ID", help="node id taking the seed")] = None,
    seed_input: Annotated[str | None, typer.Option("--seed-input", metavar="NAME",
                                                   help="its input name (seed, noise_seed ...)")] = None,
    order: Annotated[int | None, typer.Option("--order", help="column position (default: after the last)")] = None,
) -> int:
    """Add a pipeline step after checking its node ids against the workflow."""
    from ..generation import steps as S

    with open_workspace(workspace) as col:
        step = S.add_step(col, name, workflow, output_node=output_node, input_node=input_node, seed_node=seed_node,
                          seed_input=seed_input, order=order)
    typer.echo(f"added step {step.name!r} (order {step.order}, {len(step.workflow)} nodes)")
    return 0


@app.command("tree")
def tree(workspace: Workspace) -> int:
    """Candidates per column: total, active, rejected, jobs pending."""
    from ..generation import tree as T

    with open_workspace(workspace, reads_only=True) as col:
        print_frame(T.columns_df(col), empty="no steps yet")
    return 0


@app.command("jobs")
def jobs(
    workspace: Workspace,
    status: Annotated[str | None, typer.Option("--status", help="only jobs with this status")] = None,
    last: Annotated[int, typer.Option("-n", "--last", min=1, help="how many of the newest jobs")] = 20,
) -> int:
    """The newest generation jobs: id, step, parent, status, attempts, server, seconds queued and running, error."""
    from ..generation import jobs as J

    with open_workspace(workspace, reads_only=True) as col:
        df = J.jobs_df(col, status=status).tail(last)
    print_frame(df, ["id", "step", "parent_id", "status", "attempts", "server", "queue_s", "run_s", "error"],
                empty="no jobs")
    return 0
