"""lcrp_core.config: every pydantic failure becomes one ConfigError naming the source, the key path
and what was expected, with the value given."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import AfterValidator, TypeAdapter, model_validator
from pydantic_core import core_schema

from lcrp_core.config import DATA, DataModel, Model, either, expect, fail, key_path, rule, validate
from lcrp_core.errors import ConfigError, DataError


class Leaf(Model):
    delta: float = 0.0
    name: str = "x"


class Root(Model):
    count: Annotated[int, expect("an integer >= 1", lambda v: v >= 1)] = 1
    flag: bool = False
    points: list[Leaf] = []
    low: int = 0
    high: int = 0

    @model_validator(mode="after")
    def _ordered(self) -> Root:
        if self.low > self.high:
            raise fail("high", f"expected high >= low ({self.low})", self.high)
        return self


@pytest.mark.parametrize("data, key, message", [
    ({"count": 0}, "count", "expected an integer >= 1, got 0"),
    ({"count": True}, "count", "expected an integer, got True"),
    ({"count": "2"}, "count", "expected an integer, got '2'"),
    ({"flag": 1}, "flag", "expected true or false, got 1"),
    ({"points": [{}, {}, {"delta": "a"}]}, "points[2].delta", "expected a number, got 'a'"),
    ({"points": [{"nope": 1}]}, "points[0].nope", "unknown key; expected one of ['delta', 'name']"),
    ({"points": [[1]]}, "points[0]", "expected a mapping, got [1]"),
    ({"points": {}}, "points", "expected a list, got {}"),
    ({"low": 3, "high": 2}, "high", "expected high >= low (3), got 2"),
    (7, None, "expected a mapping, got 7"),
])
def test_errors_name_source_key_and_expectation(data, key, message):
    with pytest.raises(ConfigError) as err:
        validate(Root, data, source="s.yaml")
    assert err.value.key == key and err.value.path == "s.yaml"
    assert str(err.value) == ": ".join(p for p in ("s.yaml", key, message) if p)


def test_a_section_is_named_under_its_own_path():
    with pytest.raises(ConfigError, match=r"^s\.yaml: tables\[0\]\.count: expected an integer >= 1"):
        validate(Root, {"count": -1}, source="s.yaml", at="tables[0]")
    assert validate(Root, {"points": [{"delta": 0.5}]}, source=None).points[0].delta == 0.5


def test_key_paths():
    assert key_path(["tables", 0, "panels", 1], ["columns", 0]) == "tables[0].panels[1].columns[0]"
    assert key_path(["dataset", "root"]) == "dataset.root" and key_path([]) == ""


def _documented_words(doc: str) -> set[str]:
    """The keys a doc names: every word of a backtick span (``{low, high}``, ``dataset.root``)
    and every ``key:`` of its YAML examples."""
    text = (Path(__file__).resolve().parent.parent / "docs" / doc).read_text()
    blocks = re.findall(r"```.*?```", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return ({w for span in re.findall(r"`([^`]+)`", text) for w in re.findall(r"\w+", span)}
            | {k for block in blocks for k in re.findall(r"(\w+):", block)})


@pytest.mark.parametrize("doc, models", [
    ("sweep-spec.md", ["SpecFile", "DatasetSection", "BackendSection", "TpeSection", "Span",
                       "Choices", "SlurmSettings"]),
    ("report-spec.md", ["ReportFile", "Options", "Panel", "AblationTable", "ResourceTable",
                        "ResourceRow", "Plot"]),
])
def test_every_spec_key_is_documented(doc, models):
    import lcrp_core.report.spec
    import lcrp_core.sweep.slurm
    import lcrp_core.sweep.spec

    modules = (lcrp_core.sweep.spec, lcrp_core.sweep.slurm, lcrp_core.report.spec)
    words = _documented_words(doc)
    for name in models:
        model = next(getattr(m, name) for m in modules if hasattr(m, name))
        missing = [f.alias or k for k, f in model.model_fields.items() if (f.alias or k) not in words]
        assert not missing, f"{doc} does not document {name}'s keys {missing}"


def _named(name: str) -> str:
    if not name:
        raise fail(None, "an empty name")
    return name


class Entry(DataModel):
    id: Annotated[int | str, either(int, str)]
    size: Annotated[list, rule(core_schema.list_schema(core_schema.int_schema(strict=True, ge=0),
                                                       min_length=2, max_length=2), "expected [H, W]")]
    tags: dict[Annotated[str, AfterValidator(_named)], int] = {}


@pytest.mark.parametrize("data, key, message", [
    ({"size": [1, 2]}, "id", "missing key"),
    ({"id": None, "size": [1, 2]}, "id", "expected an integer or a string, got NoneType None"),
    ({"id": True, "size": [1, 2]}, "id", "expected an integer or a string, got bool True"),
    ({"id": 1, "size": [1, -2]}, "size", "expected [H, W], got [1, -2]"),
    ({"id": 1, "size": "ab"}, "size", "expected a list, got str 'ab'"),
    ({"id": 1, "size": [1, 2], "tags": {"": 1}}, "tags.", "an empty name"),
    ({"id": 1, "size": [1, 2], "tags": []}, "tags", "expected an object, got list []"),
    ([1] * 40, "(document)", "expected an object, got list " + repr([1] * 40)[:60]),
])
def test_data_models_raise_data_errors_in_the_readers_words(data, key, message):
    with pytest.raises(DataError) as err:
        validate(Entry, data, source="m.json")
    assert not isinstance(err.value, ConfigError)
    assert (err.value.key, str(err.value)) == (key, f"m.json: {key}: {message}")


def test_data_models_ignore_unknown_keys_and_adapters_take_the_data_dialect():
    assert validate(Entry, {"id": "7", "size": [1, 2], "extra": 1}, source=None).id == "7"
    adapter = TypeAdapter(dict[str, Entry])
    with pytest.raises(DataError, match=r"^m\.json: videos\.a\.size: expected \[H, W\], got \[1\]$"):
        validate(adapter, {"a": {"id": 1, "size": [1]}}, source="m.json", at="videos", dialect=DATA)
