"""lcrp_core.schema: one home for the keys a study and its trials record.

docs/trial-schema.md documents exactly the keys the module defines; the writers produce only
those keys; studies written before the schema version was recorded read as version 1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lcrp_core import schema
from lcrp_core.report.cells import study_rows, trial_params
from lcrp_core.report.db import import_reference, trial_text
from lcrp_core.report.study import read_study
from tests.helpers import BASE, cells_of, make_study, trial

DOC = Path(__file__).resolve().parents[1] / "docs" / "trial-schema.md"
KEY = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def documented(text: str) -> dict[str, set[str]]:
    """Backticked keys of each section of the page: the study's user_attrs, the trial's
    user_attrs and its system_attrs (a section runs from its bullet to the next top-level one)."""
    sections = {"- `study.user_attrs`:": "study", "- `user_attrs`:": "trial",
                "- `system_attrs`:": "system"}
    out: dict[str, set[str]] = {name: set() for name in sections.values()}
    current = None
    for line in text.splitlines():
        if line.startswith("- ") or line.startswith("#"):
            current = next((name for head, name in sections.items() if line.startswith(head)), None)
            if current == "system":
                out[current] |= set(KEY.findall(line.partition(":")[2]))
            continue
        if current is not None:
            out[current] |= set(KEY.findall(line))
    return out


def test_the_page_documents_exactly_the_keys_the_schema_defines():
    text = DOC.read_text()
    keys = documented(text)
    assert keys["study"] == set(schema.STUDY_KEYS), keys["study"] ^ set(schema.STUDY_KEYS)
    assert keys["trial"] == set(schema.TRIAL_KEYS), keys["trial"] ^ set(schema.TRIAL_KEYS)
    assert keys["system"] == set(schema.SYSTEM_KEYS)
    assert f"Schema version: **{schema.SCHEMA_VERSION}**" in text


def test_the_page_check_catches_an_undocumented_key_and_an_unknown_one():
    text = DOC.read_text()
    dropped = "\n".join(line for line in text.splitlines() if "`lcrp_slot`" not in line)
    assert documented(dropped)["trial"] == set(schema.TRIAL_KEYS) - {schema.SLOT}
    added = text.replace("  - `lcrp_params`:", "  - `lcrp_extra`: new.\n  - `lcrp_params`:")
    assert documented(added)["trial"] - set(schema.TRIAL_KEYS) == {"lcrp_extra"}


def test_every_key_is_defined_once_and_the_writers_write_only_schema_keys():
    keys = [*schema.STUDY_KEYS, *schema.TRIAL_KEYS, *schema.SYSTEM_KEYS]
    assert len(keys) == len(set(keys))
    scores = {name: 50.0 + i for i, name in enumerate(schema.SCORES)}
    written = {
        **schema.unit_attrs("c000", tpe=False, attempt=1),
        **schema.unit_attrs("t000", tpe=True, attempt=0),
        **schema.owner_attrs(host="h", pid=7, device="cuda:0", slurm_job="12_3", gpu="1"),
        **schema.run_attrs(params=BASE, code_version="v", package_versions={"optuna": "5"}),
        **schema.result_attrs(scores=scores, per_video={}, per_expression={}, frames=4,
                              cache_key="k", expressions=3, no_anchor_expressions=2,
                              no_proposal_frames=1),
        **schema.usage_attrs(wall_time_s=1.0, peak_rss_mb=2.0, peak_gpu_mb=None, fps=4.0,
                             cache_counters={"hits": 1}),
        **schema.reference_attrs(cell="c001", params=BASE, scores={"JF": 1.0}, source="paper",
                                 code_version="v"),
        schema.ERROR: schema.error_text("a\n  b"),
    }
    assert set(written) == set(schema.TRIAL_KEYS)
    assert written[schema.ERROR] == "a b" and written[schema.CELL] == "c001"
    assert schema.misses(written) == (3, 2, 1) and schema.mostly_unanchored(3, 2)
    assert schema.owner(written) == ("h", 7) and schema.unit({schema.SLOT: "t000"}) == "t000"
    study = schema.study_attrs(spec={"study": "s"}, kind="points", dataset={"digest": "d"},
                               cells=[], source="paper")
    assert set(study) | {schema.SPEC_HASH} == set(schema.STUDY_KEYS)
    assert schema.schema_version(study) == schema.SCHEMA_VERSION
    with pytest.raises(KeyError):  # a result must carry every score
        schema.result_attrs(scores={"JF": 1.0}, per_video={}, per_expression={}, frames=1,
                            cache_key="k", expressions=0, no_anchor_expressions=0,
                            no_proposal_frames=0)


def test_a_study_written_without_a_schema_version_reads_as_version_1(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    grid = cells_of([{"N": 5, "K": 3}, {"N": 10, "K": 3}])
    make_study(url, "old", [trial(grid[0], 70.0, per_video={"v1": 70.0}),
                            trial(grid[1], 72.0, per_video={"v1": 72.0}, wall_time_s=3.5,
                                  expressions=4, no_anchor_expressions=3)], cells=grid)
    study = read_study("old", storage=url)
    assert schema.SCHEMA_VERSION_ATTR not in study.user_attrs
    assert study.schema_version == schema.UNVERSIONED == 1
    assert study.kind == "points" and [c["cell"] for c in study.cells] == ["c000", "c001"]
    rows = study_rows(study).rows
    assert [r.mean for r in rows] == [70.0, 72.0] and rows[1].per_video() == {"v1": 72.0}
    assert trial_params(rows[0].trials[0])["N"] == 5
    shown = trial_text(study, 1)
    assert "cell c001" in shown and "wall_time_s" in shown
    assert "WARNING: 3 of 4 expressions had no anchor" in shown


def test_a_new_study_records_the_schema_version(tmp_path):
    csv = tmp_path / "ref.csv"
    csv.write_text("N,K,H,delta,JF\n10,3,3,0.3%,70.5\n")
    url = f"sqlite:///{tmp_path}/ref.db"
    assert import_reference("ref", csv, storage=url) == 1
    study = read_study("ref", storage=url)
    assert study.schema_version == schema.SCHEMA_VERSION
    assert set(study.user_attrs) <= set(schema.STUDY_KEYS)
    assert set(study.trials[0].user_attrs) <= set(schema.TRIAL_KEYS)
    assert study.user_attrs[schema.STUDY_SOURCE] == "ref.csv"
