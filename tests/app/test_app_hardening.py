"""Dashboard hardening: the calibration view says when its backtest is too small to judge."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.components.calibration import MIN_RELIABLE_ORIGINS, CalibrationResult, MethodScores  # noqa: E402


# ----------------------------------------------------------------------------------- calibration
def _calibration(n_windows: int) -> CalibrationResult:
    m = MethodScores("ScoreVI-Koopa", {"crps": 1.0, "coverage_80": 0.8}, {"crps": 0.5},
                     {"nominal": [0.1, 0.5, 0.9], "observed": [0.1, 0.5, 0.9]}, np.ones(100))
    return CalibrationResult([m], n_windows, 50, "2024-01-01", "2024-02-01", 24)


def test_small_backtest_is_flagged():
    assert "only 7 forecast origins" in _calibration(7).too_few_origins()
    assert _calibration(MIN_RELIABLE_ORIGINS).too_few_origins() is None


def _render_calibration(repo: str, n_windows: int) -> None:  # AppTest runs its body as the script
    import sys

    import numpy as np

    sys.path.insert(0, repo)
    from app.components import views
    from app.components.calibration import CalibrationResult, MethodScores

    m = MethodScores("ScoreVI-Koopa", {"crps": 1.0}, {"crps": 0.5}, {"nominal": [0.5], "observed": [0.4]}, np.ones(100))
    views.calibration_view(CalibrationResult([m], n_windows, 50, "2024-01-01", "2024-02-01", 24), key="k")


@pytest.mark.parametrize("n_windows, warned", [(7, True), (40, False)])
def test_calibration_view_warns_below_30_origins(n_windows, warned):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_render_calibration, args=(str(REPO), n_windows), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [w.value for w in at.warning]
    assert any(f"only {n_windows} forecast origins" in t and "~30" in t for t in texts) == warned, texts
