"""``python -m forecasting`` == the ``forecasting`` console script."""
import sys

from forecasting.cli.entry import main

sys.exit(main())
