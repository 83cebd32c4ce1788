"""SURFACE: Optuna sweeps over forecaster configs — ``space`` (search-space files), ``objective`` (one
trial), ``study`` (running a study, parallel workers), ``report`` (outputs rebuilt from storage),
``hooks`` (per-epoch reports for pruning)."""
