"""Glue between the forecaster, the training loop and the inference engine.

* :mod:`~forecasting.forecaster.methods.runtimes` — one runtime per ``inference.method`` (fit / sample / save).
* :mod:`~forecasting.forecaster.methods.point_task` — NLL/MSE point training (deterministic, MC dropout,
  conformal, MAP warm start) as a :class:`forecasting.training.TrainingTask`.
* :mod:`~forecasting.forecaster.methods.variational_task` — one engine update (ScoreVI/ADVI) per step as a
  ``TrainingTask``, plus the point-parameter (noise) update.
* :mod:`~forecasting.forecaster.methods.predictive` — ``vmap(functional_call)`` over weight samples.
* :mod:`~forecasting.forecaster.methods.params` — which parameters are Bayesian.
* :mod:`~forecasting.forecaster.methods.engine` — the only place that calls :mod:`forecasting.bayes`.
"""
