"""The generation tree (floor 4): drive ComfyUI through a funnel of steps, spending GPU time where the votes point.

Modules (each docstring says how to use it):

- :mod:`.steps`: pipeline steps (columns): API-format workflows and their input / seed / output node ids, checked
  when added; the four weight-free example workflows;
- :mod:`.tree`: candidates (images with a step and a parent): ``add_candidate`` (never over N children),
  ``reject`` / ``restore``, and the reads as DataFrames (``candidates_df``, ``column``, ``columns_df``,
  ``children``, ``siblings``, ``ancestry``);
- :mod:`.jobs`: the ``generation_jobs`` table (statuses, prompt ids, claims) and ``jobs_df``;
- :mod:`.policy`: ``next_job`` (the seed's rule; ``raffle``, ``thompson``, ``uniform``);
- :mod:`.client`: ``ComfyClient`` (ComfyUI's HTTP API and websocket);
- :mod:`.runner`: ``Runner`` (one worker per server; ``start()`` / ``snapshot()`` / ``stop()`` for notebooks).

See docs/architecture.md; this room never imports the widgets, cull or autopick.
"""
