"""The Streamlit dashboard (``app/dashboard.py``) and its helpers; see ``forecasting dashboard``."""
