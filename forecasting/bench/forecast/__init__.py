"""``forecasting bench forecast``: point and probabilistic forecasting benchmarks (Koopa and ProbTS
protocols), their method definitions, worker processes and reports."""
