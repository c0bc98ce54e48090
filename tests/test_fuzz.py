"""Inputs that are not what they should be never end in a traceback and are never accepted
silently (issue 15, item 10). Seeded random bytes, other encodings, truncated and over-long
lines, wrong JSON/YAML types, empty and missing files and directories are thrown at the data
validator behind ``python -m edco validate-data`` and at the config loader; each gets a
DataError / ConfigError whose first line names the file (and the line and field where there
is one), and the command prints it without a traceback."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
import yaml

from edco import cli, data
from edco.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
GOOD = {"id": "g1", "question": "Which layer does ciphering?", "options": {"A": "PDCP", "B": "MAC", "C": "PHY"},
        "answer": "A", "source": "fuzz", "difficulty": 1, "explanation": "PDCP ciphers."}
WRONG_VALUES = [None, 0, 1.5, True, "", [], ["A"], {}, {"A": "x"}, "Z" * 3, -1, float("nan")]
GOOD_LINE = json.dumps(GOOD, ensure_ascii=False)


# --------------------------------------------------------------------------- data files
def random_bytes(seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000)))


def wrong_type_rows() -> list[tuple[str, dict]]:
    """(field, row) with one field of GOOD replaced by a value of the wrong type or shape."""
    rows = []
    for field in ("id", "question", "options", "answer", "source", "difficulty", "explanation"):
        for value in WRONG_VALUES:
            if field in ("id", "question", "source", "explanation") and isinstance(value, str) and value.strip():
                continue  # a text field with text: fine
            if field == "explanation" and (value is None or isinstance(value, str)):
                continue  # no explanation, or an empty one: allowed by the contract
            rows.append((field, dict(GOOD, **{field: value})))
    rows.append(("options", dict(GOOD, options={"A": "x", "B": 5})))
    rows.append(("options", dict(GOOD, options={"A": "x", "B": ["y"]})))
    return rows


DATA_CASES = (
    [(f"random-bytes-{seed}", random_bytes(seed), None, None) for seed in range(12)]
    + [
        ("utf-16", (GOOD_LINE + "\n").encode("utf-16"), 1, None),
        ("latin-1", (GOOD_LINE.replace("ciphering", "chiffré") + "\n").encode("latin-1"), 1, None),
        ("utf-8-bom", ("\ufeff" + GOOD_LINE + "\n").encode("utf-8"), 1, None),
        ("empty", b"", None, None),
        ("blank-lines", b"\n  \n\t\n", None, None),
        ("two-records-on-one-line", (GOOD_LINE + GOOD_LINE.replace("g1", "g2") + "\n").encode(), 1, None),
        ("one-megabyte-line", ("{" + "x" * 1_000_000 + "\n").encode(), 1, None),
        ("huge-integer", ('{"id": "g1", "difficulty": ' + "9" * 5000 + "}\n").encode(), 1, None),
        ("deep-nesting", ("[" * 100_000 + "]" * 100_000 + "\n").encode(), 1, None),
        ("duplicate-key", (GOOD_LINE[:-1] + ', "answer": "B"}\n').encode(), 1, "answer"),
        ("not-an-object", b"[1, 2, 3]\n", 1, "<row>"),
        ("a-string", b'"just text"\n', 1, "<row>"),
        ("null", b"null\n", 1, "<row>"),
    ]
    + [(f"truncated-at-{cut}", (GOOD_LINE + "\n" + GOOD_LINE.replace("g1", "g2")[:cut] + "\n").encode(), 2, None)
       for cut in random.Random(0).sample(range(1, len(GOOD_LINE) - 1), 8)]
    + [(f"wrong-{field}-{i}", (GOOD_LINE.replace("g1", "g0") + "\n" + json.dumps(row) + "\n").encode(), 2, field)
       for i, (field, row) in enumerate(wrong_type_rows())]
)


@pytest.mark.parametrize("name, content, line, field", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_files_get_a_located_error(tmp_path, capsys, name, content, line, field):
    path = tmp_path / "train.jsonl"
    path.write_bytes(content)
    summaries, failures = data.validate_files([path])
    assert summaries == {path: None} and failures, f"{name}: accepted silently"
    first = failures[0].splitlines()[0]
    assert first.startswith(f"{path}:" if line else str(path)), first
    if line:
        assert re.match(rf"^{re.escape(str(path))}:{line}: ", first), first
    if field:
        assert f"field '{field}'" in first, first
    assert len(first) < 400, first  # a megabyte of input does not become a megabyte of message
    assert cli.main(["validate-data", str(path)]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.err and out.err.startswith(f"edco validate-data: error: {first}")
    assert f"FAIL  {path}" in out.out


def test_missing_files_and_directories(tmp_path, capsys):
    missing, directory = tmp_path / "none.jsonl", tmp_path / "dir.jsonl"
    directory.mkdir()
    summaries, failures = data.validate_files([missing, directory])
    assert summaries == {missing: None, directory: None}
    assert failures == [f"{missing}: no such file", f"{directory}: is a directory, not a JSONL file"]
    with pytest.raises(data.DataError, match="is a directory"):
        data.load_jsonl(directory)
    assert cli.main(["validate-data", str(directory)]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_a_good_file_is_still_accepted(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(GOOD_LINE + "\n" + GOOD_LINE.replace('"g1"', '"g2"') + "\n", encoding="utf-8")
    summaries, failures = data.validate_files([path])
    assert failures == [] and summaries[path].startswith("2 rows")


# --------------------------------------------------------------------------- config files
SMOKE = (REPO / "config" / "smoke.yaml").read_text()


def smoke_with(**sections) -> str:
    raw = yaml.safe_load(SMOKE)
    raw.update(sections)
    return yaml.safe_dump(raw, sort_keys=False)


def set_in(text: str, path: str, value) -> str:
    raw = yaml.safe_load(text)
    *parents, leaf = path.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[leaf] = value
    return yaml.safe_dump(raw, sort_keys=False)


# Values each key must refuse: wrong types, out of range, wrong shapes.
WRONG_CONFIG_VALUES = {
    "run": [None, 5, [], {}, "has space", "x" * 1_000_000 + "!"],
    "seeds": [None, "0", -1, [], [-1], [0, 0], {}],
    "grid": [None, "x", [], {}],
    "grid.models": [None, "qwen3", [], ["nope"], [None]],
    "data.source": [None, "x", 1, []],
    "models": [None, {}, []],
    "models.qwen3": [None, "x", [], {}, {"source": "tiny"}],
    "models.qwen3.size": [None, "x", [], {}, {"hidden_size": "64"}, {"hidden_size": 0}],
    "models.qwen3.dtype": ["float16", None, 32],
    "curriculum.n": [None, "x", -1, 0, 1.5, [], 10_000],
    "sft.learning_rate": [None, "x", -1, 0, []],
    "estimator": [None, "x", [], {"k": []}],
    "strategy_options": [None, "x", [], {"edco": []}, {"edco": None}],
}

CONFIG_CASES = (
    [(f"random-bytes-{seed}", random_bytes(100 + seed), None) for seed in range(8)]
    + [
        ("utf-16", SMOKE.encode("utf-16"), None),
        ("latin-1-comment", ("# réglage\n" + SMOKE).encode("latin-1"), None),
        ("empty", b"", None),
        ("only-comments", b"# nothing here\n", None),
        ("a-list", b"- run: smoke\n", None),
        ("a-string", b"smoke\n", None),
        ("tab-indent", SMOKE.replace("  rounds: 2", "\trounds: 2").encode(), None),
        ("duplicate-key", SMOKE.replace("  rounds: 2\n", "  rounds: 2\n  rounds: 3\n").encode(), "curriculum.rounds"),
        ("unhashable-key", b"? [a, b]\n: 1\n", None),
        ("one-megabyte-run-name", smoke_with(run="x" * 1_000_000 + "!").encode(), "run"),
        ("integer-keys", (SMOKE + "7: seven\n").encode(), "<top level>"),
    ]
    # Cut before the last required section: a cut after it leaves a valid config (every later
    # key has a default), which is no bad input.
    + [(f"truncated-at-line-{cut}", "\n".join(SMOKE.splitlines()[:cut]).encode(), None)
       for cut in random.Random(1).sample(range(1, SMOKE.splitlines().index("sft:")), 6)]
    + [(f"wrong-{path}-{i}", set_in(SMOKE, path, value).encode(), path)
       for path, values in WRONG_CONFIG_VALUES.items() for i, value in enumerate(values)]
)


@pytest.mark.parametrize("name, content, key", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_configs_get_a_located_error(tmp_path, capsys, name, content, key):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    try:
        load_config(path)
    except ConfigError as exc:
        first = str(exc).splitlines()[0]
    else:
        pytest.fail(f"{name}: accepted silently")
    assert re.match(rf"^{re.escape(str(path))}(:\d+)?: ", first), first
    if key:
        assert re.match(rf"^{re.escape(str(path))}:\d+: {re.escape(key)}", first), first
    assert len(first) < 400, first
    assert cli.main(["make-data", "--config", str(path), "--domain", "law"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith(f"edco make-data: error: {first}")


def test_missing_config_and_directory(tmp_path):
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(tmp_path / 'none.yaml'))}: no such file"):
        load_config(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
