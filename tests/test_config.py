"""lcrp_core.config: every pydantic failure becomes one ConfigError naming the source, the key path
and what was expected, with the value given."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import model_validator

from lcrp_core.config import Model, expect, fail, key_path, validate
from lcrp_core.errors import ConfigError


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
