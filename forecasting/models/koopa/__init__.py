"""Koopa (Liu et al., NeurIPS 2023): ``module`` (the pure-forward network and its config — the only
place for Koopa's defaults), ``presets`` (the paper's per-dataset settings), ``frequency_mask``
(the time-invariant frequencies computed from training data)."""
