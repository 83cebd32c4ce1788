"""Glue between the forecaster, the training loop and the inference engine.

* :mod:`~forecasting.inference.methods` — one runtime per ``inference.method`` (fit / sample / save).
* :mod:`~forecasting.inference.point_task` — NLL/MSE point training (deterministic, MC dropout,
  conformal, MAP warm start) as a :class:`forecasting.training.TrainingTask`.
* :mod:`~forecasting.inference.variational_task` — one engine update (ScoreVI/ADVI) per step as a
  ``TrainingTask``, plus the point-parameter (noise) update.
* :mod:`~forecasting.inference.predictive` — ``vmap(functional_call)`` over weight samples.
* :mod:`~forecasting.inference.params` — which parameters are Bayesian.
* :mod:`~forecasting.inference.engine` — the only place that calls :mod:`forecasting.bayes`.
"""
