"""edco/data.py: the data contract, loaders, the train/test guard and the two commands."""

from __future__ import annotations

import copy
import json
import types
from pathlib import Path

import datasets
import pytest
import yaml

from edco import cli, data
from edco.config import section_defaults
from edco.data import DataError

GOOD = {"id": "g1", "question": "Which layer does ciphering?", "options": {"A": "PDCP", "B": "MAC", "C": "PHY", "D": "RLC"},
        "answer": "A", "source": "test"}


def write_lines(path: Path, lines: list) -> Path:
    """Write rows (dicts become JSON, strings are written verbatim) one per line."""
    path.write_text("".join((json.dumps(x, ensure_ascii=False) if isinstance(x, dict) else x) + "\n" for x in lines),
                    encoding="utf-8")
    return path


def changed(**fields) -> dict:
    row = copy.deepcopy(GOOD) | {"id": "bad"}
    for key, value in fields.items():
        if value is ...:
            row.pop(key)
        else:
            row[key] = value
    return row


# --- the validator: every rejection names file, line and field --------------------------

REJECTIONS = [
    (changed(id=...), "id", "missing or empty"),
    (changed(id="  "), "id", "missing or empty"),
    (changed(question=...), "question", "missing or empty"),
    (changed(question=""), "question", "missing or empty"),
    (changed(options=["PDCP", "MAC"]), "options", "expected an object"),
    (changed(options={"A": "PDCP"}), "options", "at least 2 options, got 1"),
    (changed(options={"A": "PDCP", "C": "MAC"}), "options", "not consecutive letters from A"),
    (changed(options={"B": "PDCP", "C": "MAC"}), "options", "not consecutive letters from A"),
    (changed(options={"A": "PDCP", "B": " "}), "options", "option B has no text"),
    (changed(answer=...), "answer", "missing"),
    (changed(answer="E"), "answer", "'E' is not among the options A-D"),
    (changed(answer="AC"), "answer", "names several options; one answer letter is required"),
    (changed(difficulty="3"), "difficulty", "not an integer level"),
    (changed(difficulty=1.5), "difficulty", "not an integer level"),
    (changed(difficulty=True), "difficulty", "not an integer level"),
]


@pytest.mark.parametrize("row, field, problem", REJECTIONS, ids=[f"{f}-{i}" for i, (_, f, _) in enumerate(REJECTIONS)])
def test_rejection_names_file_line_and_field(tmp_path, row, field, problem):
    path = write_lines(tmp_path / "train.jsonl", [GOOD, row])
    with pytest.raises(DataError) as caught:
        data.load_jsonl(path)
    first_line = str(caught.value).splitlines()[0]
    assert first_line.startswith(f"{path}:2: field '{field}': ")
    assert problem in first_line


def test_the_documented_answer_message(tmp_path):
    path = write_lines(tmp_path / "x.jsonl", [changed(answer="E")])
    with pytest.raises(DataError, match=r"x\.jsonl:1: field 'answer': 'E' is not among the options A-D$"):
        data.load_jsonl(path)


@pytest.mark.parametrize("line, problem", [('{"id": "a", ', "not valid JSON"), ("[1, 2]", "field '<row>': expected a JSON object")])
def test_unparsable_and_non_object_rows(tmp_path, line, problem):
    path = write_lines(tmp_path / "t.jsonl", [GOOD, "", line])  # the blank line still counts
    with pytest.raises(DataError) as caught:
        data.load_jsonl(path)
    assert str(caught.value).startswith(f"{path}:3: {problem}")


def test_duplicate_id_names_both_lines(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [GOOD, changed(question="Another?"), GOOD | {"question": "Third?"}])
    with pytest.raises(DataError) as caught:
        data.load_jsonl(path)
    assert str(caught.value) == f"{path}:3: field 'id': duplicate id 'g1' (first at {path}:1)"


def test_all_errors_of_a_file_in_one_message(tmp_path):
    rows = [changed(id=f"r{i}", answer="Z") for i in range(25)]
    path = write_lines(tmp_path / "t.jsonl", rows)
    with pytest.raises(DataError) as caught:
        data.load_jsonl(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}:1: field 'answer': 'Z' is not among the options A-D"
    assert lines[1] == "25 problems:"
    assert len(lines) == 2 + data.MAX_LISTED_ERRORS + 1 and lines[-1].strip() == "... and 5 more"


def test_three_and_five_option_files_load(fixtures_dir):
    three = data.load_jsonl(fixtures_dir / "three_options.jsonl")
    five = data.load_jsonl(fixtures_dir / "five_options.jsonl")
    assert [len(r["options"]) for r in three] == [3, 2, 3]
    assert [len(r["options"]) for r in five] == [5, 5, 6]
    assert three[2]["explanation"].startswith("F1") and five[0]["category"] == "Lexicon"  # extra fields kept
    assert [r["difficulty"] for r in five] == [1, 2, 3]  # ORAN-style word 'hard' read as level 3


def test_twenty_six_options_load(tmp_path):
    row = changed(options={chr(65 + i): f"option {i}" for i in range(26)}, answer="Z")
    assert data.load_jsonl(write_lines(tmp_path / "t.jsonl", [row]))[0]["answer"] == "Z"


# --- train/test separation --------------------------------------------------------------

def test_normalise_question():
    assert data.normalise_question("  What IS\tthe\nAMF? ") == "what is the amf?"


def test_overlap_names_test_line_and_train_id(tmp_path):
    """The validator (validate-data) finds a test question that is a training one up to case and
    spaces, and names both places; without it, no error."""
    train = write_lines(tmp_path / "train.jsonl", [GOOD, changed(id="t2", question="Second?")])
    rows = [changed(id="x1", question="Other?"), changed(id="x2", question="  which LAYER does\nciphering? ")]
    test = write_lines(tmp_path / "test.jsonl", rows)
    assert data.validate_files([train, test])[1] == [
        f"{test}:2: field 'question': also in the training split (train id 'g1' at {train}:1); "
        "the test split must not leak into training"]
    assert data.validate_files([train, write_lines(test, rows[:1])])[1] == []


def test_hash_split_rule():
    assert data.hash_split("What is the role of the AMF in 5G core?") == "test"
    assert data.hash_split("  what is the ROLE of the amf in 5g core? ") == "test"  # normalised key
    assert data.hash_split("What does RRC stand for in 3GPP?") == "train"
    share = sum(data.hash_split(f"question number {i}") == "test" for i in range(2000)) / 2000
    assert 0.17 < share < 0.23


# --- hub formats --------------------------------------------------------------------------

@pytest.fixture
def hub_rows(fixtures_dir):
    return json.loads((fixtures_dir / "hub_rows.json").read_text(encoding="utf-8"))


def test_teleqna_github_shape(hub_rows):
    first, second, third = (data.HUB_FORMATS["teleqna"](row, i) for i, row in enumerate(hub_rows["teleqna"][:3]))
    assert first["answer"] == "A" and len(first["options"]) == 5 and first["category"] == "Standards overview"
    assert first["explanation"].startswith("The AMF")
    assert second["options"] == {"A": "PDSCH", "B": "PBCH", "C": "PUCCH", "D": "PRACH"} and second["answer"] == "B"
    assert "explanation" not in second  # empty explanation dropped
    assert len(third["options"]) == 3 and third["id"] == "teleqna-00002"


def test_teleqna_hub_copy_shape(hub_rows):
    record = data.HUB_FORMATS["teleqna"](hub_rows["teleqna_hub_copy"][0], 0)
    assert record["options"] == {"A": "next generation NodeB", "B": "global NodeB", "C": "gateway NodeB"}
    assert record["answer"] == "A" and record["explanation"] == "gNB is the NR base station."


def test_medqa_and_medmcqa_formats(hub_rows):
    medqa = data.HUB_FORMATS["medqa_4options"](hub_rows["medqa_4options"][0], 0)
    assert medqa["answer"] == "B" and medqa["options"]["B"] == "Escherichia coli" and medqa["meta_info"] == "step1"
    medmcqa = data.HUB_FORMATS["medmcqa"](hub_rows["medmcqa"][0], 0)
    assert medmcqa["options"]["C"] == "Vitamin C" and medmcqa["answer"] == "C"
    assert medmcqa["id"] == "medmcqa-e9ad821a-c438-4965-9f77-760819dfa155" and medmcqa["explanation"].startswith("Scurvy")
    with pytest.raises(ValueError, match="cop=-1"):
        data.HUB_FORMATS["medmcqa"](hub_rows["medmcqa"][0] | {"cop": -1}, 0)


def test_agieval_jec_qa_format(hub_rows):
    single, multi = hub_rows["agieval_jec_qa"]
    record = data.HUB_FORMATS["agieval_jec_qa"](single, 7)
    assert record["question"] == "甲盗窃乙的财物，下列说法正确的是？"
    assert record["options"]["A"] == "构成盗窃罪" and record["answer"] == "A" and record["id"] == "jecqa-00007"
    assert data.HUB_FORMATS["agieval_jec_qa"](multi, 8) is None  # multi-answer rows skipped


@pytest.fixture
def fake_hub(monkeypatch, hub_rows):
    """datasets.load_dataset answering from the fixture rows; records every call."""
    calls = []

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        key = {"netop/TeleQnA": "teleqna", "openlifescienceai/medmcqa": "medmcqa",
               "hails/agieval-jec-qa-kd": "agieval_jec_qa"}[path]
        if split not in {"test", "train", "validation"}:
            raise ValueError(f"Unknown split {split!r}")
        rows = hub_rows[key][:1] if (key, split) == ("medmcqa", "train") else hub_rows[key]
        rows = hub_rows[key][1:] if (key, split) == ("medmcqa", "validation") else rows
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_load_hub_hash_splits_a_single_split(fake_hub):
    spec = hub_spec(id="netop/TeleQnA", format="teleqna", train_split=None)
    train, test = data.load_hub(spec)
    assert fake_hub == [("netop/TeleQnA", None, "test")]
    assert [r["question"] for r in test] == ["What is the role of the AMF in 5G core?", "Which channel carries the MIB?"]
    assert [r["id"] for r in train] == ["netop__TeleQnA:test:teleqna-00002", "netop__TeleQnA:test:teleqna-00003"]
    assert {r["source"] for r in train + test} == {"netop/TeleQnA"}


def test_load_hub_with_two_splits_and_skipped_rows(fake_hub):
    train, test = data.load_hub(hub_spec(id="openlifescienceai/medmcqa", format="medmcqa", test_split="validation"))
    assert [r["answer"] for r in train] == ["C"] and [r["answer"] for r in test] == ["B"]
    jec_train, jec_test = data.load_hub(hub_spec(id="hails/agieval-jec-qa-kd", format="agieval_jec_qa", train_split=None))
    assert len(jec_train + jec_test) == 1  # the multi-answer row never arrives


def test_load_hub_errors_name_the_config(fake_hub):
    with pytest.raises(DataError, match="format 'nope' .* known formats: agieval_jec_qa, medmcqa"):
        data.load_hub(hub_spec(id="netop/TeleQnA", format="nope"))
    with pytest.raises(DataError, match="data.hub: cannot load 'netop/TeleQnA' .*split 'dev'"):
        data.load_hub(hub_spec(id="netop/TeleQnA", format="teleqna", train_split=None, test_split="dev"))
    with pytest.raises(DataError, match=r"<hub netop/TeleQnA split test>:0: cannot convert with format 'medmcqa'"):
        data.load_hub(hub_spec(id="netop/TeleQnA", format="medmcqa", train_split=None))


# --- local source, make_domain_data, caps -------------------------------------------------

def data_config(source: str, **keys) -> dict:
    """A config's data section with its defaults filled, as load_config gives it."""
    return {"run": "t", "data": {**section_defaults("data"), "source": source, **keys}}


def hub_spec(**keys) -> dict:
    """One data.hub.domains.<domain> entry with its defaults filled."""
    return section_defaults("data", "hub", "domains", "*", "[]") | keys


def local_config(root: Path, **data_keys) -> dict:
    domains = {"demo": {"train": ["demo/train.jsonl", "demo/train_extra.jsonl"], "test": ["demo/test.jsonl"]}}
    return data_config("local", local={"root": str(root), "domains": domains}, **data_keys)


def test_load_local_concatenates_files(fixtures_dir):
    train, test = data.load_local(local_config(fixtures_dir / "local"), "demo")
    assert len(train) == 7 and train[-1]["id"] == "demo-extra-1" and len(test) == 2


def test_load_local_missing_root_or_file_names_the_key(tmp_path, fixtures_dir):
    with pytest.raises(DataError, match="^data.local.root: directory .*/nowhere does not exist"):
        data.load_local(local_config(tmp_path / "nowhere"), "demo")
    config = local_config(fixtures_dir / "local")
    config["data"]["local"]["domains"]["demo"]["test"] = ["demo/absent.jsonl"]
    with pytest.raises(DataError, match=r"^data.local.domains.demo.test: .*absent.jsonl does not exist"):
        data.load_local(config, "demo")
    with pytest.raises(DataError, match="^data.local.domains.law: no files"):
        data.load_local(config, "law")


def test_load_local_rejects_ids_and_questions_shared_across_files(tmp_path, fixtures_dir):
    root = tmp_path / "local"
    (root / "demo").mkdir(parents=True)
    for name in ("train.jsonl", "test.jsonl"):
        (root / "demo" / name).write_text((fixtures_dir / "local" / "demo" / name).read_text())
    (root / "demo" / "train_extra.jsonl").write_text((fixtures_dir / "local" / "demo" / "test.jsonl").read_text())
    with pytest.raises(DataError) as caught:
        data.load_local(local_config(root), "demo")
    assert str(caught.value).startswith(f"{root}/demo/test.jsonl:1: field 'id': duplicate id 'demo-test-1' "
                                        f"(first at {root}/demo/train_extra.jsonl:1)")


def test_caps_are_deterministic(fixtures_dir):
    config = local_config(fixtures_dir / "local", max_train=3, max_test=1)
    first, second = data.make_domain_data(config, "demo"), data.make_domain_data(copy.deepcopy(config), "demo")
    assert [r["id"] for r in first[0]] == [r["id"] for r in second[0]] and len(first[0]) == 3
    assert len(first[1]) == 1 and first[1] == second[1]
    full_train, _ = data.make_domain_data(local_config(fixtures_dir / "local"), "demo")
    assert {r["id"] for r in first[0]} <= {r["id"] for r in full_train} and len(full_train) == 7


@pytest.fixture
def fake_synthetic(monkeypatch):
    """A stand-in edco.synthetic (the real one is developed separately)."""
    module = types.ModuleType("edco.synthetic")
    module.generate_domain = lambda cfg, domain: ([changed(id="s1", question="Q one?")], [changed(id="s2", question="Q two?")])
    module.generate_general = lambda cfg: [changed(id=f"gen{i}", question=f"General {i}?") for i in range(3)]
    monkeypatch.setattr(data, "synthetic", module)
    return module


def test_synthetic_source_is_validated_and_overlap_is_an_error(fake_synthetic):
    config = data_config("synthetic")
    train, test = data.make_domain_data(config, "law")
    assert [r["id"] for r in train + test] == ["s1", "s2"]
    fake_synthetic.generate_domain = lambda cfg, domain: ([GOOD], [changed(id="t1", question=GOOD["question"].upper())])
    with pytest.raises(DataError, match=r"^<synthetic law test>:1: field 'question': also in the training split "
                                        r"\(train id 'g1' at <synthetic law train>:1\)"):
        data.make_domain_data(config, "law")


# --- commands -----------------------------------------------------------------------------

def test_cli_validate_good_and_bad(tmp_path, fixtures_dir, capsys):
    good = fixtures_dir / "three_options.jsonl"
    assert cli.main(["validate-data", str(good)]) == 0
    assert capsys.readouterr().out.strip() == f"ok    {good}  (3 rows, options 2-3, answers A 100%)"
    bad = write_lines(tmp_path / "bad.jsonl", [GOOD, changed(answer="E")])
    assert cli.main(["validate-data", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"FAIL  {bad}" in captured.out
    assert f"{bad}:2: field 'answer': 'E' is not among the options A-D" in captured.err


def test_cli_validate_checks_train_test_overlap(tmp_path, capsys):
    train = write_lines(tmp_path / "train.jsonl", [GOOD])
    test = write_lines(tmp_path / "test.jsonl", [changed(id="x")])
    assert cli.main(["validate-data", str(train), str(test)]) == 1
    assert f"{test}:1: field 'question': also in the training split (train id 'g1' at {train}:1)" in capsys.readouterr().err


def test_cli_validate_missing_file(tmp_path, capsys):
    assert cli.main(["validate-data", str(tmp_path / "none.jsonl")]) == 1
    assert "none.jsonl: no such file" in capsys.readouterr().err


def write_config(tmp_path: Path, data_section: dict, domains: list[str]) -> Path:
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "smoke.yaml").read_text())
    config["data"], config["grid"]["domains"] = data_section, domains
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_cli_make_data_local(tmp_path, fixtures_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, local_config(fixtures_dir / "local")["data"], ["demo"])
    assert cli.main(["make-data", "--config", str(cfg), "--domain", "demo"]) == 0
    out = capsys.readouterr().out
    assert "results/smoke/data/demo/train.jsonl (7 rows; difficulty 1:3 2:2 3:2)" in out
    assert "results/smoke/data/demo/test.jsonl (2 rows; difficulty 1:1 2:1)" in out
    assert len(data.load_jsonl(tmp_path / "results/smoke/data/demo/train.jsonl")) == 7
    assert cli.main(["make-data", "--config", str(cfg), "--domain", "general"]) == 1
    assert "general split exists only for the synthetic source" in capsys.readouterr().err


def test_cli_make_data_general(tmp_path, fake_synthetic, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, {"source": "synthetic", "synthetic": {"seed": 1}}, ["law"])
    assert cli.main(["make-data", "--config", str(cfg), "--domain", "general"]) == 0
    assert "results/smoke/data/general/train.jsonl (3 rows)" in capsys.readouterr().out
    assert len(data.load_jsonl(tmp_path / "results/smoke/data/general/train.jsonl")) == 3


# --- the real staged data (../shared/data) ------------------------------------------------

REAL_DIRS = ["communication/oran_bench_13k", "communication/teleqna", "law/jec_qa_ca", "law/jec_qa_kd",
             "medicine/medmcqa", "medicine/medqa_usmle"]
HASH_SPLIT_DIRS = set(REAL_DIRS) - {"law/jec_qa_kd"}  # KD's test = AGIEval membership, not the hash


def test_real_data_directories_are_all_covered(shared_root):
    found = {str(p.parent.relative_to(shared_root / "data")) for p in (shared_root / "data").glob("*/*/train.jsonl")}
    assert found == set(REAL_DIRS)


@pytest.mark.parametrize("directory", REAL_DIRS)
def test_real_data_validates_without_overlap(shared_root, directory):
    base = shared_root / "data" / directory
    assert data.validate_files([base / "train.jsonl", base / "test.jsonl"])[1] == []  # rows valid, no shared question
    train, test = data.load_jsonl(base / "train.jsonl"), data.load_jsonl(base / "test.jsonl")
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    if directory in HASH_SPLIT_DIRS:  # our hash rule reproduces the staged split exactly
        assert {data.hash_split(r["question"]) for r in train} == {"train"}
        assert {data.hash_split(r["question"]) for r in test} == {"test"}


@pytest.mark.parametrize("directory", ["law/jec_qa_ca", "law/jec_qa_kd"])
def test_real_multi_answer_files_are_rejected_clearly(shared_root, directory, capsys):
    path = shared_root / "data" / directory / "multi_answer" / "test.jsonl"
    assert cli.main(["validate-data", str(path)]) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert f"{path}:1: field 'answer': " in first and "one answer letter is required" in first


def test_load_local_on_real_data(shared_root):
    config = data_config("local", local={"root": str(shared_root / "data"), "domains": {
        "medicine": {"train": ["medicine/medqa_usmle/train.jsonl", "medicine/medmcqa/train.jsonl"],
                     "test": ["medicine/medqa_usmle/test.jsonl", "medicine/medmcqa/test.jsonl"]}}})
    train, test = data.load_local(config, "medicine")
    assert (len(train), len(test)) == (1019 + 2222, 254 + 594)


def test_a_domain_can_come_from_local_files_in_a_hub_config(fixtures_dir, fake_hub):
    """data.domain_sources (issue #17 item 7: the paper's law domain is the original JEC-QA,
    which no Hub id holds): that domain reads data.local's files, the others stay on the Hub."""
    config = data_config("hub", domain_sources={"demo": "local"},
                         local={"root": str(fixtures_dir / "local"),
                                "domains": {"demo": {"train": ["demo/train.jsonl"], "test": ["demo/test.jsonl"]}}},
                         hub={"domains": {"communication": [hub_spec(id="netop/TeleQnA", format="teleqna",
                                                                     train_split=None)]}})
    train, test = data.make_domain_data(config, "demo")
    assert [r["id"] for r in train] == [r["id"] for r in data.load_jsonl(fixtures_dir / "local" / "demo" / "train.jsonl")]
    assert not fake_hub  # the local domain never asked the Hub
    data.make_domain_data(config, "communication")
    assert [call[0] for call in fake_hub] == ["netop/TeleQnA"]


def test_the_paper_configs_law_pool_fills_every_n(shared_root):
    """The original JEC-QA KD files hold enough single-answer questions for the paper's N
    (1750 SFT, 800 Llama RL); the Hub's AGIEval copy holds ~500."""
    from edco.config import load_config, round_budget
    from edco.curriculum import check_budget

    config = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    config["data"]["local"]["root"] = str(shared_root / "data")
    train, test = data.make_domain_data(config, "law")
    assert (len(train), len(test)) == (3163, 516)
    for paradigm in config["grid"]["paradigms"]:
        for model in config["grid"]["models"]:
            check_budget(round_budget(config, paradigm, model)[1], len(train), "domain 'law'")
