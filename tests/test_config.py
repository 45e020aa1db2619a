"""Workspace settings (``imagerank.config``): sections, defaults, the file format old and new, environment, checks."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import imagerank
from imagerank.config import (
    CONFIG_NAME,
    SECTIONS,
    AutopickSettings,
    CoreSettings,
    CullSettings,
    FeatureSettings,
    GenerationSettings,
    PairingSettings,
    Settings,
    load_settings,
    write_settings,
)
from imagerank.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA = Path(__file__).parent / "data"

# Every default, pinned: a change here is a change of behaviour for every workspace written without the field.
DEFAULTS: dict[str, dict[str, Any]] = {
    "core": {
        "roots": (),
        "recursive": True,
        "extensions": (".jpg", ".jpeg", ".png", ".webp"),
        "host": "127.0.0.1",
        "port": 8888,
        "thumb_size": 512,
        "max_image_pixels": 178_956_970,
    },
    "features": {
        "phash_threshold": 8,
        "cosine_threshold": 0.95,
        "blur_threshold": 100.0,
        "dark_threshold": 40.0,
        "bright_threshold": 215.0,
        "clip_fraction_threshold": 0.05,
    },
    "pairing": {
        "strategy": "active",
        "topk": 100,
        "skip_as_draw": False,
        "prior_refit_every": 250,
        "prior_features": "auto",
        "posterior": "auto",
    },
    "cull": {
        "burst_gap_s": 2.0,
        "cull_dedupe_hamming": 6,
        "cull_min_sharpness": 15.0,
        "cull_max_clip": 0.5,
        "cull_best_fraction": 0.2,
        "cull_w_sharpness": 1.0,
        "cull_w_clip": 1.0,
        "cull_w_noise": 0.5,
        "cull_w_exposure": 0.1,
        "cull_w_unique": 0.05,
        "cull_w_saliency": 0.2,
        "cull_w_eyes": 0.5,
        "cull_faces": False,
        "plan_export_roots": (),
        "plan_sample": 10,
        "llm_url": "",
        "llm_model": "",
        "llm_api_key": "",
        "llm_timeout_s": 60.0,
    },
    "generation": {
        "max_children": 3,
        "target_finals": 4,
        "job_policy": "raffle",
        "job_seed": 0,
        "comfy_retries": 5,
        "comfy_job_timeout_s": 3600.0,
        "comfy_poll_s": 1.0,
    },
    "autopick": {},
}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("IMAGERANK_"):
            monkeypatch.delenv(var)


def _file(root: Path) -> dict[str, Any]:
    return tomllib.loads((root / CONFIG_NAME).read_text(encoding="utf-8"))


def test_defaults_are_pinned() -> None:
    assert list(SECTIONS) == list(DEFAULTS)
    s = Settings()
    for name, expected in DEFAULTS.items():
        section = getattr(s, name)
        assert type(section) is SECTIONS[name]
        assert dataclasses.asdict(section) == expected
        assert dataclasses.asdict(SECTIONS[name]()) == expected
        for key, value in expected.items():
            assert getattr(s, key) == value  # the flat read-only shortcut
            assert type(getattr(s, key)) is type(value)
    assert s.to_dict() == DEFAULTS
    assert s.to_dict(flat=True) == {k: v for table in DEFAULTS.values() for k, v in table.items()}
    assert s.extra == {}
    assert load_settings() == s
    assert [type(getattr(s, n)) for n in SECTIONS] == [
        CoreSettings, FeatureSettings, PairingSettings, CullSettings, GenerationSettings, AutopickSettings,
    ]


def test_every_field_has_a_flat_shortcut_and_a_documented_default() -> None:
    for name, cls in SECTIONS.items():
        doc = cls.__doc__ or ""
        assert f"[{name}]" in doc
        for f in dataclasses.fields(cls):
            assert f"{f.name}:" in doc, f"{cls.__name__} does not document {f.name}"
            assert getattr(Settings, f.name).section == name
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().core.port = 1  # type: ignore[misc]


def test_flat_construction_replace_and_sections() -> None:
    s = Settings(blur_threshold=50.0, port=9000, strategy="spec")
    assert s.features.blur_threshold == s.blur_threshold == 50.0
    assert s.core.port == 9000
    assert s.pairing.strategy == "spec"
    assert Settings(**s.to_dict(flat=True)) == s
    assert Settings(**s.to_dict()) == s
    assert Settings(core=CoreSettings(port=9000), features={"blur_threshold": 50.0}, strategy="spec") == s
    # Flat names are applied on top of a section given in the same call.
    assert Settings(core=CoreSettings(port=1), port=2).port == 2

    r = s.replace(prior_refit_every=0)
    assert r.prior_refit_every == 0
    assert r.blur_threshold == 50.0
    assert s.prior_refit_every == 250
    assert s.replace(features=FeatureSettings()).blur_threshold == 100.0
    assert s.replace(features={"dark_threshold": 5.0}).features == FeatureSettings(blur_threshold=50.0,
                                                                                    dark_threshold=5.0)
    assert s.replace(roots=("/a", "/b")).roots == ("/a", "/b")
    assert Settings(extensions=["JPG", ".Png"]).extensions == (".jpg", ".png")
    assert Settings(roots=[Path("/x")]).roots == ("/x",)
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        Settings(colour="red")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        s.replace(colour="red")
    with pytest.raises(ConfigError, match="features: unknown field"):
        s.replace(features={"port": 1})
    with pytest.raises(ConfigError, match="core: expected a CoreSettings"):
        Settings(core=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="prior_refit_every"):
        s.replace(prior_refit_every=-1)


def test_round_trip_writes_sections_with_tomli_w(tmp_path: Path) -> None:
    s = Settings(roots=("/photos/a", "/photos/b, 2023"), recursive=False, extensions=(".jpg", ".heic"), port=9001,
                 thumb_size=256, phash_threshold=10, cosine_threshold=-0.5, clip_fraction_threshold=0.0,
                 strategy="spec", skip_as_draw=True, prior_refit_every=0, prior_features="embeddings:m__p",
                 burst_gap_s=0.5)
    path = write_settings(tmp_path, s)
    assert path == tmp_path / CONFIG_NAME
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# imagerank workspace settings")
    for name in SECTIONS:
        assert f"[{name}]" in text  # the empty sections too
    assert "[imagerank]" not in text
    data = _file(tmp_path)
    assert set(data) == set(SECTIONS)
    assert data["core"]["roots"] == ["/photos/a", "/photos/b, 2023"]
    assert data["pairing"] == {"strategy": "spec", "topk": 100, "skip_as_draw": True, "prior_refit_every": 0,
                               "prior_features": "embeddings:m__p", "posterior": "auto"}
    assert data["generation"] == DEFAULTS["generation"]
    assert data["autopick"] == {}
    again = load_settings(tmp_path)
    assert again == s
    assert again.to_dict() == s.to_dict()
    write_settings(tmp_path, again)
    assert path.read_text(encoding="utf-8") == text
    assert load_settings(tmp_path, env=False) == s
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write leaves nothing behind


def test_old_flat_imagerank_table_loads(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text((DATA / "workspace-0.1.0" / CONFIG_NAME).read_text())
    s = load_settings(tmp_path)
    assert s.roots == ("/photos/shoot",)
    assert s.pairing.strategy == "spec"
    assert s.prior_refit_every == 0
    assert s.features == FeatureSettings()
    assert s.extra == {}
    write_settings(tmp_path, s)  # rewriting converts it to sections
    data = _file(tmp_path)
    assert "imagerank" not in data
    assert data["pairing"]["strategy"] == "spec"
    assert load_settings(tmp_path) == s


def test_old_top_level_keys_load(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text('roots = ["/p"]\nthumb_size = 128\nskip_as_draw = true\n'
                                        'blur_threshold = 7\nburst_gap_s = 3\n')
    s = load_settings(tmp_path)
    assert s.roots == ("/p",)
    assert s.core.thumb_size == 128
    assert s.pairing.skip_as_draw is True
    assert s.features.blur_threshold == 7.0
    assert isinstance(s.blur_threshold, float)
    assert s.cull.burst_gap_s == 3.0
    assert s.extra == {}


def test_sections_win_over_old_flat_keys_in_one_file(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text('port = 1111\n[core]\nport = 2222\n[imagerank]\ntopk = 7\n')
    s = load_settings(tmp_path)
    assert s.port == 2222
    assert s.topk == 7


def test_unknown_keys_are_kept_where_they_were(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text(
        'future_flag = true\n'
        '[core]\nport = 9002\nnew_core_key = "x"\n'
        '[generation]\ncomfy_url = "http://127.0.0.1:8188"\n'
        '[future]\na = [1, 2]\n[future.nested]\nb = 1.5\n'
        '[imagerank]\nold_unknown = 3\n'
    )
    s = load_settings(tmp_path)
    assert s.port == 9002
    assert s.generation == GenerationSettings()
    assert s.extra == {"future_flag": True, "core": {"new_core_key": "x"},
                       "generation": {"comfy_url": "http://127.0.0.1:8188"},
                       "future": {"a": [1, 2], "nested": {"b": 1.5}}, "imagerank": {"old_unknown": 3}}
    assert Settings() == Settings(extra={"x": 1})  # extra is not compared
    write_settings(tmp_path, s.replace(thumb_size=64))
    data = _file(tmp_path)
    assert data["future_flag"] is True
    assert data["core"]["new_core_key"] == "x"
    assert data["core"]["port"] == 9002
    assert data["core"]["thumb_size"] == 64
    assert data["generation"] == {**DEFAULTS["generation"], "comfy_url": "http://127.0.0.1:8188"}
    assert data["future"] == {"a": [1, 2], "nested": {"b": 1.5}}
    assert data["imagerank"] == {"old_unknown": 3}
    assert load_settings(tmp_path).extra == s.extra


def test_precedence_defaults_file_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_settings(tmp_path, Settings(port=1001, thumb_size=128, topk=5))
    assert load_settings(tmp_path).port == 1001
    monkeypatch.setenv("IMAGERANK_PORT", "1002")
    monkeypatch.setenv("IMAGERANK_FEATURES__BLUR_THRESHOLD", "12.5")
    monkeypatch.setenv("IMAGERANK_RECURSIVE", "off")
    monkeypatch.setenv("IMAGERANK_EXTENSIONS", "jpg, .PNG")
    monkeypatch.setenv("IMAGERANK_ROOTS", os.pathsep.join(["/a, b", "/c"]))
    s = load_settings(tmp_path)
    assert (s.port, s.blur_threshold, s.recursive, s.extensions) == (1002, 12.5, False, (".jpg", ".png"))
    assert s.roots == ("/a, b", "/c")
    assert s.thumb_size == 128
    assert s.topk == 5
    monkeypatch.setenv("IMAGERANK_CORE__PORT", "1003")  # the section form wins over the flat one
    assert load_settings(tmp_path).port == 1003
    assert load_settings(tmp_path, port=1004).port == 1004  # explicit overrides win
    assert load_settings(tmp_path, port=None).port == 1003  # None overrides are ignored
    assert load_settings(tmp_path, env=False) == Settings(port=1001, thumb_size=128, topk=5)
    assert load_settings(tmp_path, env=False, features=FeatureSettings(dark_threshold=1.0)).dark_threshold == 1.0
    assert load_settings(tmp_path, env=False, pairing={"topk": 9}).topk == 9
    with pytest.raises(ConfigError, match="unknown setting 'portt'"):
        load_settings(tmp_path, portt=1)
    with pytest.raises(ConfigError, match="pairing: unknown field"):
        load_settings(tmp_path, pairing={"port": 1})
    monkeypatch.setenv("IMAGERANK_THUMB_SIZE", "big")
    with pytest.raises(ConfigError, match=r"core\.thumb_size: expected .*'big'.*IMAGERANK_THUMB_SIZE"):
        load_settings(tmp_path)
    assert load_settings(tmp_path, env=False).thumb_size == 128


def test_init_never_writes_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGERANK_PORT", "9123")
    monkeypatch.setenv("IMAGERANK_PAIRING__TOPK", "17")
    col = imagerank.init(tmp_path / "ws", tmp_path / "imgs", strategy="spec", prior_refit_every=0)
    try:
        assert col.settings.port == 9123
        assert col.settings.topk == 17
        assert col.settings.strategy == "spec"
        assert col.settings.prior_refit_every == 0
    finally:
        col.close()
    data = _file(tmp_path / "ws")
    assert data["core"]["port"] == 8888
    assert data["pairing"]["topk"] == 100
    assert data["pairing"]["strategy"] == "spec"
    assert data["pairing"]["prior_refit_every"] == 0
    assert "9123" not in (tmp_path / "ws" / CONFIG_NAME).read_text()
    # Re-running init over the workspace keeps the file's values and still does not write the environment.
    imagerank.init(tmp_path / "ws", thumb_size=64).close()
    data = _file(tmp_path / "ws")
    assert (data["core"]["port"], data["core"]["thumb_size"], data["pairing"]["strategy"]) == (8888, 64, "spec")
    monkeypatch.delenv("IMAGERANK_PORT")
    again = imagerank.open(tmp_path / "ws")
    try:
        assert again.settings.port == 8888
        assert again.settings.thumb_size == 64
    finally:
        again.close()


BAD_VALUES: list[tuple[str, Any]] = [
    ("roots", 5),
    ("roots", ["/ok", 3]),
    ("roots", [""]),
    ("recursive", "maybe"),
    ("recursive", 2),
    ("extensions", [""]),
    ("extensions", ["./x"]),
    ("extensions", [".j pg"]),
    ("extensions", 7),
    ("host", ""),
    ("host", "a b"),
    ("host", 127),
    ("port", 0),
    ("port", 65536),
    ("port", "http"),
    ("port", True),
    ("port", 80.5),
    ("thumb_size", 15),
    ("max_image_pixels", 0),
    ("phash_threshold", -1),
    ("phash_threshold", 65),
    ("cosine_threshold", 1.01),
    ("cosine_threshold", -1.5),
    ("cosine_threshold", float("nan")),
    ("blur_threshold", -0.1),
    ("blur_threshold", "sharp"),
    ("dark_threshold", -1.0),
    ("dark_threshold", 256),
    ("bright_threshold", 300.0),
    ("clip_fraction_threshold", 1.5),
    ("clip_fraction_threshold", -0.01),
    ("strategy", ""),
    ("strategy", "  "),
    ("strategy", 3),
    ("topk", 0),
    ("skip_as_draw", "sometimes"),
    ("prior_refit_every", -1),
    ("prior_features", "pixels"),
    ("prior_features", "embeddings:"),
    ("burst_gap_s", 0.0),
    ("burst_gap_s", -2),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_values_raise_config_error_naming_the_field(name: str, value: Any, tmp_path: Path) -> None:
    section = Settings.__dict__[name].section
    with pytest.raises(ConfigError, match=rf"^{section}\.{name}: expected .+, got ") as info:
        Settings(**{name: value})
    assert repr(value) in str(info.value) or name in {"roots", "extensions"}
    with pytest.raises(ConfigError, match=rf"{section}\.{name}"):
        Settings().replace(**{name: value})
    with pytest.raises(ConfigError, match=rf"{section}\.{name}"):
        load_settings(None, **{name: value})
    with pytest.raises(ConfigError, match=rf"{section}\.{name}"):
        SECTIONS[section](**{name: value})


def test_bad_values_in_the_file_name_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text("[features]\nphash_threshold = 100\n")
    with pytest.raises(ConfigError, match=r"imagerank\.toml: features\.phash_threshold: expected an integer 0\.\.64"):
        load_settings(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("[imagerank]\nport = 0\n")
    with pytest.raises(ConfigError, match=r"core\.port"):
        load_settings(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("core = 5\n")
    with pytest.raises(ConfigError, match=r"\[core\]: expected a table"):
        load_settings(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("[core\nport = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path)


def test_lenient_but_exact_conversions() -> None:
    s = Settings(port="8080", thumb_size=256.0, recursive="yes", skip_as_draw=1, blur_threshold=5, roots="/one")
    assert (s.port, s.thumb_size, s.recursive, s.skip_as_draw) == (8080, 256, True, True)
    assert isinstance(s.blur_threshold, float)
    assert s.roots == ("/one",)
