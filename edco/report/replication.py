"""The pre-registered replication test (results/reference/cpu_study_replication/PLAN.md): which
pooled rows of a study's verdict table are its claims (or, without a claim, its lead), and
whether a replication's verdict table repeats each of them.

    python -m edco replicate --study results/reference/cpu_study \\
        --replication results/cpu_study_replication     # -> results/cpu_study_replication/tables/replication.{csv,md}

``--study`` / ``--replication``: a run's directory (results/<run>) or its tables/verdict.csv.
The test is TEST below, as PLAN.md words it. Writes tables/replication.csv (numbers) and
tables/replication.md (the table) beside the replication's verdict table (``--out`` elsewhere),
atomically.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from edco import io
from edco.errors import UserFacingError
from edco.report.render import CSV_FLOATS, estimate, fmt, markdown
from edco.report.stats import ALL_CELLS, ALPHA, holm

ROW = ["paradigm", "mode", "strategy", "reference"]
TEST = ("A claim is a pooled row (all cells) of the study's verdict table whose fixed-effects p, Holm-corrected "
        "over every pooled row, is < 0.05 (without one, the row with the smallest p is the lead). It replicates "
        "when the replication's same row has a fixed-effects Δ of the same sign and a seeds-aware p < 0.05 after "
        "Holm over the claims tested (a lead alone: no correction). The random-effects (Hartung-Knapp) estimate "
        "is reported beside it; it is not the test.")


def pooled_rows(path: Path) -> pd.DataFrame:
    """The pooled ("all cells") rows of a verdict.csv, indexed by paradigm x mode x strategy x reference."""
    frame = pd.read_csv(path)
    missing = [c for c in ROW + ["domain", "diff", "low", "high", "p", "p_holm"] if c not in frame.columns]
    if missing:
        raise UserFacingError(f"{path}: no column {missing[0]}; is this a tables/verdict.csv of a run?")
    return frame[frame["domain"] == ALL_CELLS].set_index(ROW)


def claims(study: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The study's claims (Holm p < ALPHA), or its lead (smallest fixed-effects p) when it has none."""
    found = study[study["p_holm"] < ALPHA]
    if len(found):
        return found, "claim"
    return study.nsmallest(1, "p"), "lead"


def replicate_claims(study: pd.DataFrame, replication: pd.DataFrame, replication_path: Path | str = "replication") -> pd.DataFrame:
    """One row per claim: the study's and the replication's estimates, Holm over the claims, verdict."""
    tested, kind = claims(study)
    absent = [key for key in tested.index if key not in replication.index]
    if absent:
        raise UserFacingError(f"{replication_path}: no pooled row {' / '.join(absent[0])}; "
                              "run the replication with the claim's paradigm and strategies")
    again = replication.loc[tested.index]
    out = pd.DataFrame(index=tested.index)
    out["kind"] = kind
    for prefix, frame in (("study", tested), ("replication", again)):
        for column in ("diff", "low", "high", "p", "p_holm", "re_diff", "re_low", "re_high", "re_p"):
            out[f"{prefix}_{column}"] = frame[column].to_numpy() if column in frame else float("nan")
    out["replication_p_claims_holm"] = holm(out["replication_p"].tolist())
    same_sign = (out["study_diff"] > 0) == (out["replication_diff"] > 0)
    out["replicates"] = same_sign & (out["replication_p_claims_holm"] < ALPHA)
    return out.reset_index()


def table_text(result: pd.DataFrame) -> pd.DataFrame:
    """Text cells: each claim in the study and in the replication, and whether it replicates."""
    out = result[["kind", "paradigm", "strategy", "reference"]].copy()
    for prefix in ("study", "replication"):
        out[f"{prefix} Δ fixed"] = [estimate(*v, bounds="+.3f") for v in
                                    zip(result[f"{prefix}_diff"], result[f"{prefix}_low"], result[f"{prefix}_high"])]
        out[f"{prefix} Δ random effects"] = [estimate(*v, bounds="+.3f") for v in zip(
            result[f"{prefix}_re_diff"], result[f"{prefix}_re_low"], result[f"{prefix}_re_high"])]
    out["study p (Holm, all rows)"] = result["study_p_holm"].map(lambda v: fmt(v, ".2g"))
    out["replication p (Holm over claims)"] = [f"{fmt(p, '.2g')} ({fmt(h, '.2g')})" for p, h in
                                                zip(result["replication_p"], result["replication_p_claims_holm"])]
    out["replication random-effects p"] = result["replication_re_p"].map(lambda v: fmt(v, ".2g"))
    out["replicates"] = result["replicates"].map({True: "yes", False: "no"})
    return out


def verdict_csv(path: Path | str) -> Path:
    """A run's tables/verdict.csv, given the run's directory or the file itself (a .csv)."""
    path = Path(path)
    return path if path.suffix == ".csv" else path / "tables" / "verdict.csv"


def write_replication(study: Path | str, replication: Path | str, out: Path | str | None = None) -> list[Path]:
    """Test ``replication``'s verdict against ``study``'s claims; write <out>.csv and <out>.md
    (default: replication.{csv,md} beside the replication's verdict.csv). Returns [csv, md]."""
    study, replication = verdict_csv(study), verdict_csv(replication)
    for path in (study, replication):
        if not path.is_file():
            raise UserFacingError(f"missing {path}: a run's tables/verdict.csv (python -m edco table --verdict)")
    result = replicate_claims(pooled_rows(study), pooled_rows(replication), replication)
    out = Path(out) if out else replication.parent / "replication"
    csv, md = out.with_suffix(".csv"), out.with_suffix(".md")
    io.write_text(csv, result.to_csv(index=False, float_format=CSV_FLOATS))
    io.write_text(md, f"# Replication test ({study} → {replication})\n\n{TEST}\n\n{markdown(table_text(result))}\n")
    return [csv, md]
