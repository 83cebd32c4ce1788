"""Every bad input yields its own precise, one-line message (file, column, row) and a Problem kind."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forecasting.data import SeriesFrame, SplitRule, check_length, read_series, validate
from forecasting.core.errors import ForecastingError

GOOD = "date,a,b\n" + "".join(f"2020-01-01 {h:02d}:00:00,{h},{h * 2}\n" for h in range(24))


def _write(tmp_path: Path, text: str | bytes, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _error(path: Path, **kw) -> str:
    with pytest.raises(ForecastingError) as info:
        read_series(path, **kw)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_good_file_has_no_problems(tmp_path):
    assert validate(_write(tmp_path, GOOD, "good.csv")) == []


def test_duplicate_timestamp(tmp_path):
    lines = _lines(GOOD)
    path = _write(tmp_path, "".join(lines[:6] + [lines[5]] + lines[6:]))
    msg = _error(path)
    assert "duplicate timestamp '2020-01-01 04:00:00'" in msg and "row 6 (line 7)" in msg and "column 'date'" in msg


def test_unparseable_timestamp(tmp_path):
    lines = _lines(GOOD)
    lines[4] = "2020-01-01 03:00:00x,3,6\n"
    msg = _error(_write(tmp_path, "".join(lines)))
    assert "unparseable timestamp '2020-01-01 03:00:00x'" in msg and "row 4 (line 5)" in msg


def test_no_parseable_time_column(tmp_path):
    msg = _error(_write(tmp_path, "name,v\nfoo,1\nbar,2\n"))
    assert "cannot parse timestamps" in msg and "--time-col" in msg


def test_gap_reports_the_first_gap(tmp_path):
    lines = _lines(GOOD)
    del lines[10]  # 09:00 missing
    del lines[15]
    msg = _error(_write(tmp_path, "".join(lines)))
    assert "gap in timestamps" in msg and "expected 2020-01-01 09:00:00" in msg and "row 10 (line 11)" in msg
    problems = validate(tmp_path / "bad.csv")
    assert [p.kind for p in problems] == ["gap"]


def test_irregular_spacing(tmp_path):
    lines = _lines(GOOD)
    lines[5] = "2020-01-01 04:17:00,4,8\n"
    msg = _error(_write(tmp_path, "".join(lines)))
    assert "irregular spacing" in msg and "2020-01-01 04:17:00" in msg and "row 5 (line 6)" in msg


def test_non_numeric_cell(tmp_path):
    lines = _lines(GOOD)
    lines[8] = "2020-01-01 07:00:00,7,seven\n"
    msg = _error(_write(tmp_path, "".join(lines)))
    assert "column 'b', row 8 (line 9): non-numeric value 'seven'" in msg
    assert [p.kind for p in validate(tmp_path / "bad.csv")] == ["non_numeric"]  # not also "missing"


def test_infinite_value_is_rejected(tmp_path):
    lines = _lines(GOOD)
    lines[3] = "2020-01-01 02:00:00,inf,4\n"
    assert "non-numeric value 'inf'" in _error(_write(tmp_path, "".join(lines)))


def test_all_nan_channel(tmp_path):
    text = "date,a,b\n" + "".join(f"2020-01-0{d},{d},\n" for d in range(1, 6))
    msg = _error(_write(tmp_path, text))
    assert "column 'b'" in msg and "no values" in msg
    # a fill policy cannot invent a whole channel
    assert "no values" in _error(tmp_path / "bad.csv", missing="interpolate")


def test_missing_value_names_row(tmp_path):
    lines = _lines(GOOD)
    lines[12] = "2020-01-01 11:00:00,,22\n"
    msg = _error(_write(tmp_path, "".join(lines)))
    assert "column 'a', row 12 (line 13): missing value" in msg and "interpolate" in msg


def test_unknown_columns_suggest_a_fix(tmp_path):
    path = _write(tmp_path, GOOD)
    assert "unknown time column 'dat'" in _error(path, time_col="dat") and "did you mean 'date'" in _error(path, time_col="dat")
    assert "unknown target column 'c'" in _error(path, target_cols=["a", "c"])


def test_long_layout_needs_an_item_column(tmp_path):
    assert "needs an item column" in _error(_write(tmp_path, GOOD), layout="long")


def test_empty_file_and_header_only(tmp_path):
    assert "empty (0 bytes)" in _error(_write(tmp_path, "", "empty.csv"))
    assert "no data rows" in _error(_write(tmp_path, "date,a\n", "header.csv"))


def test_wrong_delimiter(tmp_path):
    msg = _error(_write(tmp_path, GOOD.replace(",", ";")), delimiter=",")
    assert "only one column" in msg and "delimiter=';'" in msg


def test_ragged_line(tmp_path):
    lines = _lines(GOOD)
    lines[7] = "2020-01-01 06:00:00,6,12,99\n"
    msg = _error(_write(tmp_path, "".join(lines)))
    assert "line 8" in msg and "4 fields but the header has 3" in msg


def test_encoding_problem_and_override(tmp_path):
    text = "date,temp\u00e9rature\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n"
    path = _write(tmp_path, text.encode("latin-1"))
    assert "not valid UTF-8" in _error(path) and "encoding" in _error(path)
    (frame,) = read_series(path, encoding="latin-1")
    assert frame.columns == ("temp\u00e9rature",)
    assert "UTF-16" in _error(_write(tmp_path, text.encode("utf-16"), "u16.csv"))


def test_size_limit(tmp_path):
    msg = _error(_write(tmp_path, GOOD), max_bytes=100)
    assert "over the limit" in msg and "max_bytes" in msg


def test_missing_file():
    assert "file not found" in _error(Path("/nonexistent/x.csv"))


def test_validate_lists_every_problem(tmp_path):
    lines = _lines(GOOD)
    lines[3] = "2020-01-01 02:00:00,x,4\n"
    lines[6] = "2020-01-01 05:00:00,5,\n"
    lines.insert(9, lines[8])
    problems = validate(_write(tmp_path, "".join(lines)))
    assert [p.kind for p in problems] == ["non_numeric", "duplicate_timestamp", "missing_value"]
    assert problems[0].row == 3 and problems[0].column == "a"
    with pytest.raises(ForecastingError, match="and 2 more"):
        read_series(tmp_path / "bad.csv")


def test_long_panel_problem_names_the_item(tmp_path):
    text = "item_id,timestamp,target\n" + "".join(f"{i},2020-01-0{d},{d}\n" for i in "ab" for d in range(1, 5))
    text += "b,2020-01-04,9\n"
    msg = _error(_write(tmp_path, text))
    assert "item 'b'" in msg and "duplicate timestamp" in msg and "row 9 (line 10)" in msg


def _frame(n: int) -> SeriesFrame:
    ts = np.arange(n).astype("timedelta64[h]") + np.datetime64("2020-01-01", "ns")
    return SeriesFrame("x", ts.astype("datetime64[ns]"), np.zeros((n, 1)), ("v",), "h")


def test_series_shorter_than_lookback_plus_horizon():
    with pytest.raises(ForecastingError, match="50 rows, fewer than lookback 48 \\+ horizon 24"):
        check_length(_frame(50), 48, 24)
    with pytest.raises(ForecastingError, match="val split .* holds no window"):
        check_length(_frame(200), 96, 24, SplitRule())  # val has 20 rows < horizon 24
    check_length(_frame(1000), 96, 24)
    with pytest.raises(ForecastingError, match="ett_months split needs 14400 rows"):
        check_length(_frame(1000), 96, 24, SplitRule(kind="ett_months"))


def test_panel_frequency_is_shared_so_a_short_items_gap_shows(tmp_path):
    text = "unique_id,ds,y\nA,2020-01-01,1\nA,2020-01-03,3\n" + "".join(f"B,2020-01-0{d},{d}\n" for d in range(1, 6))
    msg = _error(_write(tmp_path, text))
    assert "item 'A'" in msg and "gap in timestamps" in msg and "freq 'D'" in msg
