"""The cull IR: every column documented with its dtype, frames round-trip through the arrow schema, bad records."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from imagerank.cull import ir
from imagerank.errors import InvalidArgumentError


def test_every_column_is_documented_and_typed() -> None:
    doc = ir.__doc__ or ""
    for name, _ in ir.IR_COLUMNS:
        assert f"``{name}``" in doc, f"{name} is not described in imagerank.cull.ir"
    assert [f.name for f in ir.IR_SCHEMA] == [n for n, _ in ir.IR_COLUMNS]
    assert len({n for n, _ in ir.IR_COLUMNS}) == len(ir.IR_COLUMNS)
    for code in ir.REASON_CODES:
        assert ir.REASON_CODES[code]


def test_empty_and_filled_frames_round_trip_through_the_schema() -> None:
    empty = ir.empty_ir()
    assert list(empty.columns) == [n for n, _ in ir.IR_COLUMNS]
    assert pa.Table.from_pandas(empty, schema=ir.IR_SCHEMA, preserve_index=False).num_rows == 0
    rows = [
        {"path": "b.jpg", "size": 10, "status": "ok", "capture_time": dt.datetime(2024, 5, 1, 12, 0, 0, 250000),
         "dhash": -5, "bucket": "best", "is_pick": True,
         "reasons": [ir.reason("burst_pick", "select", "highest score", value=1.5)]},
        {"path": "a.nef", "size": 3, "status": "metadata_only", "reasons": [ir.reason("no_preview", "preview", "x")]},
    ]
    df = ir.to_frame(rows)
    assert list(df["path"]) == ["a.nef", "b.jpg"]  # sorted by path
    assert str(df["size"].dtype) == "Int64"
    assert str(df["dhash"].dtype) == "Int64"
    assert str(df["capture_time"].dtype) == "datetime64[us]"
    assert str(df["capture_time_utc"].dtype) == "datetime64[us, UTC]"
    assert df["capture_time"].iloc[1].microsecond == 250000
    assert df["burst_id"].isna().all()
    assert df["bucket"].iloc[0] is None
    t = pa.Table.from_pandas(df, schema=ir.IR_SCHEMA, preserve_index=False)
    assert t.column("reasons").to_pylist()[1][0]["code"] == "burst_pick"


def test_bad_records_and_reason_codes_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown"):
        ir.to_frame([{"path": "a.jpg", "nonsense": 1}])
    with pytest.raises(InvalidArgumentError, match="path"):
        ir.to_frame([{"size": 1}])
    with pytest.raises(InvalidArgumentError, match="reason code"):
        ir.reason("because", "select", "no")
