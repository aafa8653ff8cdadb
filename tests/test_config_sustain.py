"""Config: the [sustain] section loads as integers (the bar per mille), refuses bad values by key, and its
models need prices like any model an agent may call."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings


def _load(tmp_path: Path, text: str):  # noqa: ANN202
    path = tmp_path / "selfpub.toml"
    path.write_text('state_dir = "s"\n' + text)
    return load_settings(path, {})


def _problems(tmp_path: Path, text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return {p.key: f"{p.what} | {p.fix}" for p in info.value.problems}


def test_defaults_and_a_full_section(tmp_path: Path) -> None:
    s = _load(tmp_path, "").sustain
    assert (s.enabled, s.window_hours, s.expand_at) == (True, 24, 2000)  # on by default: the loop lives on what it earns
    s = _load(tmp_path, """
[prices."smollm2-135m-instruct"]
input_per_million = "0.5"
output_per_million = "1.5"
[prices."cheap-model"]
input_per_million = "0.1"
output_per_million = "0.2"
[prices."big-model"]
input_per_million = "3"
output_per_million = "9"
[sustain]
enabled = true
window_hours = 48
expand_at = "1.25"
conserve_items_per_cycle = 0
expand_items_per_cycle = 6
conserve_models = { writer = "cheap-model", critic = "cheap-model" }
expand_models = { writer = "big-model" }
""").sustain
    assert (s.enabled, s.window_hours, s.expand_at, s.conserve_items_per_cycle, s.expand_items_per_cycle) == (
        True, 48, 1250, 0, 6)
    assert isinstance(s.expand_at, int)
    assert s.conserve_models == {"writer": "cheap-model", "critic": "cheap-model"}
    assert s.model_dump()["expand_at"] == "1.25" and _load(tmp_path, "").sustain.model_dump()["expand_at"] == "2.0"


@pytest.mark.parametrize(("value", "says"), [
    ('"0.9"', "below 1.0"),
    ('"two"', "not a ratio"),
    ('"1.0005"', "more than 3 decimals"),
    ('"inf"', "not a finite ratio"),
    ("true", "not a ratio"),
])
def test_a_bad_bar_names_the_key_and_the_fix(tmp_path: Path, value: str, says: str) -> None:
    problems = _problems(tmp_path, f"[sustain]\nexpand_at = {value}\n")
    assert list(problems) == ["sustain.expand_at"]
    what, fix = problems["sustain.expand_at"].split(" | ")
    assert says in what and fix == 'write the ratio as a decimal of at least 1.0, e.g. "2.0"'


def test_a_tier_model_without_a_price_is_refused_up_front(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[sustain]\nexpand_models = { writer = "gpt-unpriced" }\n')
    assert "prices.gpt-unpriced" in problems and "add [prices." in problems["prices.gpt-unpriced"]


def test_a_tier_model_for_an_unknown_role_is_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[sustain]\nconserve_models = { editor = "x" }\n')
    assert any(k.startswith("sustain.conserve_models") for k in problems), problems


def test_window_hours_must_be_positive(tmp_path: Path) -> None:
    assert "sustain.window_hours" in _problems(tmp_path, "[sustain]\nwindow_hours = 0\n")
