"""Auto-pick (floor 4): the best image per subject from Wikimedia Commons or a local folder, scored by an
aesthetic head on CLIP embeddings.

See docs/architecture.md; this room never imports the widgets, generation or cull.
"""
