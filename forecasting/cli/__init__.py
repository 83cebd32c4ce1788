"""SURFACE: the ``forecasting`` command line (``entry``: parser and main; ``commands/``: one module per
command group). Thin over the facades' public API."""
