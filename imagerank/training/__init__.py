"""Training: datasets from the vote log, the pairwise ranker, the crop proposer, metrics and the model registry.

Torch and Lightning are imported by the sub-modules that need them, not here.
"""
