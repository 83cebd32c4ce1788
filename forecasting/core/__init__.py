"""The bottom layer: configs as data, the one error type, the one atomic writer (with claims on the
directory names it builds, :mod:`~forecasting.core.claims`), the one artifact format, stop signals,
device resolution and torchrun process-group plumbing. Imports nothing else of the package."""
