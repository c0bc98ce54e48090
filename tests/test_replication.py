"""`python -m edco replicate` (edco.report.replication): the pre-registered replication test picks
the study's claims (or its lead), Holm-corrects the replication's p over them, and needs the
study's sign; the committed replication's tables are what the command writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from edco import cli
from edco.errors import UserFacingError
from edco.report import replication as replication_module
from edco.report.stats import ALL_CELLS

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference"


@pytest.fixture
def replication():
    return replication_module


def verdict(rows: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    """A verdict.csv's pooled rows: strategy -> (diff, p, p_holm), plus one per-cell row that is never a claim."""
    frame = pd.DataFrame([{"paradigm": "sft", "mode": "generate", "strategy": s, "reference": "random",
                           "domain": ALL_CELLS, "model": ALL_CELLS, "diff": d, "low": d - 0.02, "high": d + 0.02,
                           "p": p, "p_holm": h, "re_diff": d, "re_low": d - 0.05, "re_high": d + 0.05, "re_p": 0.2}
                          for s, (d, p, h) in rows.items()])
    cell = frame.iloc[[0]].assign(domain="law", model="m1", p=1e-9, p_holm=1e-9)
    return pd.concat([frame, cell], ignore_index=True)


def run(replication, tmp_path, study, again) -> pd.DataFrame:
    study.to_csv(tmp_path / "study.csv", index=False)
    again.to_csv(tmp_path / "again.csv", index=False)
    assert cli.main(["replicate", "--study", str(tmp_path / "study.csv"), "--replication", str(tmp_path / "again.csv"),
                     "--out", str(tmp_path / "replication")]) == 0
    return pd.read_csv(tmp_path / "replication.csv")


def test_claims_are_tested_with_holm_over_the_claims_and_the_study_sign(replication, tmp_path):
    study = verdict({"a": (0.03, 0.001, 0.01), "b": (-0.08, 0.002, 0.02), "c": (0.05, 0.01, 0.2)})
    again = verdict({"a": (0.02, 0.03, 0.5), "b": (0.01, 0.02, 0.01), "c": (0.05, 0.0001, 0.001)})
    result = run(replication, tmp_path, study, again).set_index("strategy")
    assert list(result.index) == ["a", "b"]  # c has Holm p 0.2 in the study: not a claim
    assert (result["kind"] == "claim").all()
    # Holm over the 2 claims: b 0.02 x 2 = 0.04, a max(0.04, 0.03 x 1) = 0.04 < 0.05 (the
    # replication's own Holm over all its rows, 0.5, is not the test)
    assert result["replication_p_claims_holm"].tolist() == pytest.approx([0.04, 0.04])
    assert bool(result.loc["a", "replicates"])
    assert not bool(result.loc["b", "replicates"])  # significant, but the other sign
    text = (tmp_path / "replication.md").read_text()
    assert "| claim | sft | a | random |" in text and text.count("| yes |") == 1


def test_without_a_claim_the_lead_is_tested_uncorrected(replication, tmp_path):
    study = verdict({"a": (0.03, 0.04, 0.08), "b": (0.02, 0.03, 0.09)})
    result = run(replication, tmp_path, study, verdict({"a": (0.0, 0.9, 1.0), "b": (0.02, 0.049, 0.1)}))
    assert result["strategy"].tolist() == ["b"] and result["kind"].tolist() == ["lead"]
    assert result["replication_p_claims_holm"].tolist() == pytest.approx([0.049])
    assert result["replicates"].tolist() == [True]


def test_a_replication_without_the_claims_row_says_what_to_run(replication, tmp_path):
    study = verdict({"a": (0.03, 0.001, 0.01)})
    study.to_csv(tmp_path / "study.csv", index=False)
    verdict({"b": (0.03, 0.001, 0.01)}).to_csv(tmp_path / "again.csv", index=False)
    with pytest.raises(UserFacingError, match=r"again.csv: no pooled row sft / generate / a / random"):
        replication.write_replication(tmp_path / "study.csv", tmp_path / "again.csv")
    assert not (tmp_path / "replication.csv").exists()


def test_a_file_that_is_not_a_verdict_table_is_named(replication, tmp_path):
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "main.csv", index=False)
    with pytest.raises(UserFacingError, match=r"main.csv: no column paradigm"):
        replication.pooled_rows(tmp_path / "main.csv")


def test_the_committed_study_replicates_against_itself(replication):
    """The study's own table as its replication: every claim has its own sign and a tiny p."""
    study = ROOT / "results" / "reference" / "cpu_study" / "tables" / "verdict.csv"
    rows = replication.pooled_rows(study)
    result = replication.replicate_claims(rows, rows)
    assert (result["kind"] == "claim").all() and result["replicates"].all()


def test_the_command_takes_run_directories_and_writes_beside_the_replications_verdict(tmp_path, capsys):
    for run, rows in (("study", {"a": (0.03, 0.001, 0.01)}), ("again", {"a": (0.02, 0.001, 0.01)})):
        (tmp_path / run / "tables").mkdir(parents=True)
        verdict(rows).to_csv(tmp_path / run / "tables" / "verdict.csv", index=False)
    assert cli.main(["replicate", "--study", str(tmp_path / "study"), "--replication", str(tmp_path / "again")]) == 0
    written = tmp_path / "again" / "tables"
    assert pd.read_csv(written / "replication.csv")["replicates"].tolist() == [True]
    assert "| claim | sft | a | random |" in (written / "replication.md").read_text()
    assert cli.main(["replicate", "--study", str(tmp_path / "study"), "--replication", str(tmp_path / "none")]) == 1
    assert "none/tables/verdict.csv" in capsys.readouterr().err


def test_the_committed_replication_tables_are_what_the_command_writes(replication, tmp_path):
    """results/reference/cpu_study_replication/tables/replication.* recomputed from the two
    committed verdict tables (the header names the paths the command was given)."""
    committed = REFERENCE / "cpu_study_replication" / "tables"
    csv, md = replication.write_replication(REFERENCE / "cpu_study", committed / "verdict.csv", tmp_path / "replication")
    pd.testing.assert_frame_equal(pd.read_csv(csv), pd.read_csv(committed / "replication.csv"))
    body = md.read_text().split("\n", 1)[1]
    assert body == (committed / "replication.md").read_text().split("\n", 1)[1]
