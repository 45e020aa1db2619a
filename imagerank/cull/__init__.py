"""Culling a photo shoot (floor 4): scan -> IR -> passes (bursts, near-duplicates, best-of-burst) -> buckets.

See docs/architecture.md; this room never imports the widgets, generation or autopick.
"""
