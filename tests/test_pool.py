"""Pool YAML validation: every problem is reported with file, slot and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from router.errors import ConfigError, UnknownModelError
from router.paths import PROJECT_ROOT
from router.routing.pool import check_scorable, list_configs, load_pool

ROOT = PROJECT_ROOT


def slot(name="a", **kw):
    d = {"name": name, "model": f"org/{name}", "cost_per_m_input_tokens": 1.0, "cost_per_m_output_tokens": 2.0}
    d.update(kw)
    return d


def write(tmp_path, data, name="pool.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def base(**kw):
    d = {"policy": "p", "checkpoint": str(ROOT / "assets" / "checkpoint"), "models": [slot("a"), slot("b")]}
    d.update(kw)
    return d


def test_bundled_configs_load_and_are_scorable():
    from router.model.head import load_checkpoint

    names = {p.name for p in list_configs()}
    assert {"default.yaml", "routerbench-11.yaml", "mixed-local.yaml"} <= names
    for path in list_configs():
        pool = load_pool(path)
        check_scorable(pool, load_checkpoint(pool.checkpoint_path).slots)


def test_optional_configs_load_and_are_not_served_by_default():
    from router.model.head import load_checkpoint

    options = sorted((ROOT / "configs" / "options").glob("*.yaml"))
    assert [p.name for p in options] == ["routerbench-11-fast.yaml"]
    assert not set(options) & set(list_configs())  # a second encoder loads only when asked for
    pool = load_pool(options[0])
    assert pool.policy == "routerbench-11-fast" and Path(pool.checkpoint_path).name == "checkpoint-fast"
    check_scorable(pool, load_checkpoint(pool.checkpoint_path).slots)


def test_default_pool_matches_the_reference_system():
    pool = load_pool(ROOT / "configs" / "default.yaml")
    assert pool.policy == "default" and pool.default_tolerance == 0.2
    assert pool.baseline == "claude-opus-4-6-high" and len(pool.models) == 9
    opus = pool.slot("claude-opus-4-6-high")
    assert (opus.cost_per_m_input_tokens, opus.cost_per_m_output_tokens) == (2.77, 25.78)
    assert all(m.trained_as and m.trained_as_reason for m in pool.models)
    assert pool.slot("gpt-5-4-high").extra_body


def test_mixed_pool_has_a_local_slot():
    pool = load_pool(ROOT / "configs" / "mixed-local.yaml")
    local = pool.models[0]
    assert local.local and local.api_base == "http://localhost:8002/v1" and local.cost_per_m_input_tokens == 0
    assert pool.slot("gpt-5-2-high").model == "moonshotai/kimi-k2.7-code-20260612"
    assert pool.slot("gpt-5-4-high").model == "z-ai/glm-5.2-20260616"


def test_negative_price_names_file_slot_and_field(tmp_path):
    p = write(tmp_path, base(models=[slot("a"), slot("b", cost_per_m_input_tokens=-1)]))
    with pytest.raises(ConfigError) as e:
        load_pool(p)
    msg = str(e.value)
    assert str(p) in msg and "models[1].cost_per_m_input_tokens" in msg and "'b'" in msg


def test_unknown_key_is_an_error(tmp_path):
    p = write(tmp_path, base(models=[slot("a", cost_per_m_input=3)]))
    with pytest.raises(ConfigError, match=r"models\[0\]\.cost_per_m_input .*unknown key"):
        load_pool(p)


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ConfigError, match="tolerence"):
        load_pool(write(tmp_path, base(tolerence=0.1)))


def test_missing_field(tmp_path):
    s = slot("a")
    del s["model"]
    with pytest.raises(ConfigError, match=r"models\[0\]\.model \(slot 'a'\): Field required"):
        load_pool(write(tmp_path, base(models=[s])))


def test_duplicate_names(tmp_path):
    with pytest.raises(ConfigError, match=r"models\[1\]\.name: duplicate slot name 'a'"):
        load_pool(write(tmp_path, base(models=[slot("a"), slot("a")])))


def test_all_problems_reported_together(tmp_path):
    p = write(tmp_path, base(models=[slot("a", cost_per_m_output_tokens=-2), slot("b", foo=1)]))
    with pytest.raises(ConfigError) as e:
        load_pool(p)
    assert len(e.value.problems) == 2


def test_tolerance_range(tmp_path):
    with pytest.raises(ConfigError, match="default_tolerance"):
        load_pool(write(tmp_path, base(default_tolerance=1.5)))


def test_baseline_must_be_a_slot(tmp_path):
    with pytest.raises(ConfigError, match="baseline: 'zz' is not a slot"):
        load_pool(write(tmp_path, base(baseline="zz")))


def test_slot_the_checkpoint_cannot_score(tmp_path):
    pool = load_pool(write(tmp_path, base(models=[slot("a", trained_as="nope")])))
    with pytest.raises(ConfigError, match=r"models\[0\]\.trained_as \(slot 'a'\): the checkpoint cannot score 'nope'"):
        check_scorable(pool, ["x", "y"])


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pool(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_pool(tmp_path / "missing.yaml")


def test_bad_api_base(tmp_path):
    with pytest.raises(ConfigError, match=r"models\[0\]\.api_base"):
        load_pool(write(tmp_path, base(models=[slot("a", api_base="localhost:8000")])))


def test_baseline_defaults_to_most_expensive(tmp_path):
    pool = load_pool(write(tmp_path, base(models=[slot("a"), slot("b", cost_per_m_output_tokens=50)])))
    assert pool.baseline_slot.name == "b"
    with pytest.raises(UnknownModelError, match="known slots: a, b"):
        pool.slot("c")
