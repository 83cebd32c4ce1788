"""``python -m forecasting`` == the ``forecasting`` console script."""
import sys

from forecasting.cli import main

sys.exit(main())
