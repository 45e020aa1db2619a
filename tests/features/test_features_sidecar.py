"""Parquet sidecars: parts, newest row per image, stale rows, metadata, compaction, other readers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from imagerank.errors import FeatureError
from imagerank.features.sidecar import META_KEY, Sidecar, list_sidecars, normalise_name


def _rows(ids: list[int], fp: str, v: float) -> list[dict]:
    return [{"image_id": i, "fingerprint": fp, "phash": int(v) + i, "dhash": 0, "whash": 0, "digest": "d"}
            for i in ids]


def test_parts_latest_row_and_metadata(tmp_path: Path) -> None:
    sc = Sidecar(tmp_path, "hashes")
    assert sc.read().num_rows == 0
    assert sc.metadata() == {}
    p1 = sc.write(_rows([1, 2, 3], "a", 10), metadata={"note": "first"})
    p2 = sc.write(_rows([2], "b", 100), metadata={"note": "second"})
    assert p1 is not None
    assert p2 is not None
    assert p1.name < p2.name
    assert sc.write([]) is None
    t = sc.read().to_pandas()
    assert t["image_id"].tolist() == [1, 2, 3]
    assert t.set_index("image_id").loc[2, "fingerprint"] == "b"
    assert t.set_index("image_id").loc[2, "phash"] == 102
    assert sc.read(latest=False).num_rows == 4
    assert sc.fingerprints() == {1: "a", 2: "b", 3: "a"}
    md = sc.metadata()
    assert md["note"] == "second"
    assert md["sidecar"] == "hashes"
    assert md["schema_version"] == 1
    assert json.loads(pq.read_schema(p1).metadata[META_KEY])["note"] == "first"
    assert list_sidecars(tmp_path) == ["hashes"]


def test_compaction_keeps_newest_rows(tmp_path: Path) -> None:
    sc = Sidecar(tmp_path, "hashes")
    for k in range(5):
        sc.write(_rows([1, 2, k + 3], f"f{k}", k))
    before = sc.read().to_pandas()
    assert sc.compact() == 5
    assert len(sc.parts()) == 1
    after = sc.read().to_pandas()
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))
    assert sc.compact() == 0


def test_plain_readers_see_the_parts(tmp_path: Path) -> None:
    sc = Sidecar(tmp_path, "hashes")
    sc.write(_rows([1, 2], "a", 0))
    sc.write(_rows([3], "a", 0))
    assert len(pd.read_parquet(sc.path)) == 3
    polars = pytest.importorskip("polars")
    assert polars.read_parquet(str(sc.path / "*.parquet")).height == 3
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.sql(f"SELECT count(DISTINCT image_id) FROM read_parquet('{sc.path}/*.parquet')").fetchall()[0][0]
    assert n == 3


def test_unreadable_part_is_skipped_with_a_warning(tmp_path: Path) -> None:
    sc = Sidecar(tmp_path, "hashes")
    sc.write(_rows([1], "a", 0))
    (sc.path / "part-99999999999999999999-1-x.parquet").write_bytes(b"not parquet")
    with pytest.warns(RuntimeWarning, match="unreadable sidecar part"):
        t = sc.read()
    assert t.column("image_id").to_pylist() == [1]


def test_rows_that_do_not_fit_the_schema(tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match="do not fit"):
        Sidecar(tmp_path, "hashes").write([{"image_id": "x", "fingerprint": "a"}])


@pytest.mark.parametrize("bad", ["../etc", "embeddings/../../x", "Hashes", "embeddings/a b__c", ""])
def test_names_cannot_escape(tmp_path: Path, bad: str) -> None:
    with pytest.raises(FeatureError):
        Sidecar(tmp_path, bad)


def test_name_forms() -> None:
    assert normalise_name("embeddings:ViT-B-32__openai") == "embeddings/ViT-B-32__openai"
    assert normalise_name("quality") == "quality"
