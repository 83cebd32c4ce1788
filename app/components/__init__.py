"""Pieces of the dashboard: non-UI logic (settings, data_source, jobs, forecast, calibration, charts) and the Streamlit views."""
