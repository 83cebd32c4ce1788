"""Batch prediction: streaming many series through a fitted forecaster (``predict``) and splitting
that work over independent processes with one merge step (``sharding``)."""
