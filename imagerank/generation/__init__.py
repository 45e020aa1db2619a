"""The generation tree (floor 4): pipeline steps, candidates, next_job policies, the ComfyUI client and runner.

See docs/architecture.md; this room never imports the widgets, cull or autopick.
"""
