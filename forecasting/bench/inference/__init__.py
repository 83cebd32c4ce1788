"""``forecasting bench inference``: the engine on targets with known posteriors, and its cost."""
