"""Questions in the data contract (docs/design.md#data-contract): validation, loaders, train/test guard.

One JSON object per line::

    {"id": "q1", "question": "...", "options": {"A": "...", "B": "..."}, "answer": "B",
     "source": "...", "difficulty": 2, "explanation": "..."}      # extra fields are kept

Commands (parsed by ``edco/cli.py``; ``validate_files`` and ``make_data`` do the work)::

    python -m edco validate-data PATH [PATH ...]
    python -m edco make-data --config config/smoke.yaml --domain law
    python -m edco make-data --config config/smoke.yaml --domain general   # synthetic only

Every loader returns ``(train, test)`` lists of records that passed the same checks, and
a normalised question found in both splits is an error: the test split never leaks into
training or scoring. ``difficulty`` words easy/medium/hard (ORAN-Bench) are read as levels
1/2/3; hub records get ids ``<dataset>:<split>:<row id>`` and ``source`` = the hub id;
``data.max_train`` / ``data.max_test`` keep the first rows after a fixed-seed shuffle.
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path
from string import ascii_uppercase as LETTERS
from typing import Callable, Iterable

from edco import io, layout, synthetic
from edco.config import domain_source
from edco.errors import UserFacingError

MAX_LISTED_ERRORS = 20
CAP_SEED = 20240601  # fixed: every training seed sees the same capped pool
# ORAN-Bench labels its rows with words; the contract's difficulty is an int level.
DIFFICULTY_WORDS = {"easy": 1, "medium": 2, "hard": 3}

Located = list[tuple[str, object]]  # ("file:line", row) pairs, so messages can point at rows


class DataError(UserFacingError):
    """Rows that break the contract; the first line reads ``file:line: field 'x': problem``."""


def raise_if_any(errors: list[str]) -> None:
    """One DataError for ``errors``: the first line is the first problem, complete."""
    if not errors:
        return
    message = errors[0]
    if len(errors) > 1:
        listed = "\n  ".join(errors[:MAX_LISTED_ERRORS])
        more = len(errors) - MAX_LISTED_ERRORS
        message += f"\n{len(errors)} problems:\n  {listed}" + (f"\n  ... and {more} more" if more > 0 else "")
    raise DataError(message)


# --- checking records ------------------------------------------------------------------

def _is_text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _short(value) -> str:
    """``repr(value)``, cut to a readable length (a megabyte of input is not a message)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_type(value) -> str:
    """The JSON name of a parsed value's type, for messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _text_problem(value, what: str = "missing or empty") -> str | None:
    """None for non-empty text; else what is wrong, naming a wrong JSON type."""
    if _is_text(value):
        return None
    return what if value is None or isinstance(value, str) else f"expected a non-empty string, got {_json_type(value)}"


def _options_problem(options) -> str | None:
    if not isinstance(options, dict):
        return f"expected an object of lettered options, got {_json_type(options)}"
    if len(options) < 2:
        return f"needs at least 2 options, got {len(options)}"
    expected = list(LETTERS[: len(options)])
    if list(options) != expected:
        return f"keys {''.join(map(str, options))!r} are not consecutive letters from A (expected {''.join(expected)})"
    for key, text in options.items():
        problem = _text_problem(text, "has no text")
        if problem:
            return f"option {key} {problem}" if problem == "has no text" else f"option {key}: {problem}"
    return None


def _answer_problem(answer, options: dict) -> str | None:
    span = f"A-{list(options)[-1]}"
    if answer is not None and not isinstance(answer, str):
        return f"expected one letter among the options {span} as a string, got {_json_type(answer)} {_short(answer)}"
    if not answer:
        return f"missing; expected one letter among the options {span}"
    if len(answer) > 1 and all(letter in options for letter in answer):
        return f"{answer!r} names several options; one answer letter is required (multi-answer rows are not supported)"
    return None if answer in options else f"{_short(answer)} is not among the options {span}"


def record_problems(record) -> list[tuple[str, str]]:
    """(field, problem) pairs for one row; empty when the row meets the contract."""
    if not isinstance(record, dict):
        return [("<row>", f"expected a JSON object, got {_json_type(record)}")]
    problems = []
    if not _is_text(record.get("id")):
        problems.append(("id", _text_problem(record.get("id"), "missing or empty; expected a non-empty string")))
    for name in ("question", "source"):
        problem = _text_problem(record.get(name))
        if problem:
            problems.append((name, problem))
    if "explanation" in record and not isinstance(record["explanation"], (str, type(None))):
        problems.append(("explanation", f"expected a string (or null), got {_json_type(record['explanation'])}"))
    options_problem = _options_problem(record.get("options"))
    if options_problem:
        problems.append(("options", options_problem))
    else:
        answer_problem = _answer_problem(record.get("answer"), record["options"])
        if answer_problem:
            problems.append(("answer", answer_problem))
    difficulty = record.get("difficulty")
    if "difficulty" in record and (not isinstance(difficulty, int) or isinstance(difficulty, bool) or difficulty < 1):
        problems.append(("difficulty", f"{_short(difficulty)} is not an integer level (1, 2, ...; or easy/medium/hard)"))
    return problems


def _normalise_difficulty(record) -> None:
    if isinstance(record, dict) and isinstance(record.get("difficulty"), str):
        record["difficulty"] = DIFFICULTY_WORDS.get(record["difficulty"].lower(), record["difficulty"])


def _check_located(located: Located) -> list[str]:
    """Per-row problems plus duplicate ids across all of ``located`` (both lines named)."""
    errors, first_seen = [], {}
    for where, record in located:
        _normalise_difficulty(record)
        errors += [f"{where}: field '{field}': {problem}" for field, problem in record_problems(record)]
        record_id = record.get("id") if isinstance(record, dict) else None
        if _is_text(record_id):
            if record_id in first_seen:
                errors.append(f"{where}: field 'id': duplicate id {record_id!r} (first at {first_seen[record_id]})")
            else:
                first_seen[record_id] = where
    return errors


def _locate(records: list, name: str) -> Located:
    return [(f"{name}:{index + 1}", record) for index, record in enumerate(records)]


def validate_records(records: list, name: str) -> None:
    """Check in-memory rows; ``name`` stands in for the file, the 1-based index for the line."""
    raise_if_any(_check_located(_locate(records, name)))


# --- files --------------------------------------------------------------------------

class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """json's object hook: a key given twice in one object is an error, not "the last wins"."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _file_bytes(path: Path) -> bytes:
    """The file's bytes, or a DataError naming what is wrong with the path."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a JSONL file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None


def _parse_line(raw: bytes, where: str) -> tuple[object | None, str | None]:
    """(row, None) or (None, problem) for one line of a JSONL file."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, (f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                      f"save the file as UTF-8")
    try:
        return json.loads(text, object_pairs_hook=_object_without_duplicates), None
    except _DuplicateKey as exc:
        return None, f"{where}: field '{exc}': given twice in one object"
    except json.JSONDecodeError as exc:
        return None, f"{where}: not valid JSON: {exc.msg} (column {exc.colno})"
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5000 digits, nesting too deep
        return None, f"{where}: not valid JSON: {type(exc).__name__}: {str(exc)[:120]}"


def _read_jsonl(path: Path, errors: list[str]) -> Located:
    """Rows of one file with their ``file:line``; problems go to ``errors``. An empty file (or
    only blank lines) is a problem: nothing is accepted silently."""
    located = []
    lines = _file_bytes(path).split(b"\n")
    for line_number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        row, problem = _parse_line(raw, f"{path}:{line_number}")
        if problem:
            errors.append(problem)
        else:
            located.append((f"{path}:{line_number}", row))
    if not located and not errors:
        errors.append(f"{path}: empty: no records (one JSON object per line, docs/design.md#data-contract)")
    return located


def _file_problems(path: Path) -> tuple[Located, list[str]]:
    """(rows, every problem of the file): unreadable, not JSON, or against the contract."""
    errors: list[str] = []
    try:
        located = _read_jsonl(path, errors)
    except DataError as exc:  # the file itself: missing, a directory, unreadable
        return [], [str(exc)]
    return located, errors + _check_located(located)


def _load_located(paths: Iterable[Path]) -> Located:
    errors: list[str] = []
    located = [row for path in paths for row in _read_jsonl(Path(path), errors)]
    raise_if_any(errors + _check_located(located))
    return located


def load_jsonl(path: str | Path) -> list[dict]:
    """Read a contract JSONL file; one DataError lists every bad row (file:line: field)."""
    return [record for _, record in _load_located([Path(path)])]


# --- train/test separation ------------------------------------------------------------

def normalise_question(text: str) -> str:
    """The key of the staged data's hash split and of the overlap check."""
    return " ".join(text.lower().split())


def hash_split(question: str) -> str:
    """'test' for ~20 % of questions, by a hash of the normalised text (duplicates agree)."""
    digest = hashlib.sha256(normalise_question(question).encode()).hexdigest()
    return "test" if int(digest[:8], 16) % 100 < 20 else "train"


def _overlap_errors(train: Located, test: Located) -> list[str]:
    train_by_question = {normalise_question(r["question"]): (where, r["id"]) for where, r in train}
    errors = []
    for where, record in test:
        found = train_by_question.get(normalise_question(record["question"]))
        if found:
            errors.append(f"{where}: field 'question': also in the training split "
                          f"(train id {found[1]!r} at {found[0]}); the test split must not leak into training")
    return errors


def _check_pair(train: Located, test: Located) -> None:
    raise_if_any(_check_located(train + test))  # ids unique across both splits
    raise_if_any(_overlap_errors(train, test))


# --- sources ------------------------------------------------------------------------

def load_local(config: dict, domain: str) -> tuple[list[dict], list[dict]]:
    """Concatenate the domain's train and test files under ``data.local.root``."""
    local = config["data"]["local"]
    root = Path(local["root"])
    if not root.is_dir():
        raise DataError(f"data.local.root: directory {root} does not exist (from {Path.cwd()}); "
                        "set data.local.root to the directory holding the JSONL files")
    if domain not in local["domains"]:
        raise DataError(f"data.local.domains.{domain}: no files configured for domain {domain!r}")
    spec = local["domains"][domain]
    splits = {}
    for split in ("train", "test"):
        paths = [root / relative for relative in spec[split]]
        for path in paths:
            if not path.is_file():
                raise DataError(f"data.local.domains.{domain}.{split}: {path} does not exist; "
                                f"fix the path (relative to data.local.root = {root})")
        splits[split] = _load_located(paths)
    _check_pair(splits["train"], splits["test"])
    return [r for _, r in splits["train"]], [r for _, r in splits["test"]]


def _options_from(texts: list) -> dict:
    return {LETTERS[i]: str(text).strip() for i, text in enumerate(texts)}


def _teleqna(row: dict, index: int) -> dict:
    if "choices" in row:  # the hub copy: choices list, 0-based int answer, 'explaination' (sic)
        choices = row["choices"]
        choices = ast.literal_eval(choices) if isinstance(choices, str) else choices
        options, answer = _options_from(choices), LETTERS[int(row["answer"])]
        explanation, category = row.get("explaination") or row.get("explanation"), row.get("subject")
    else:  # the GitHub TeleQnA.txt shape: 'option 1'..'option 5', answer 'option 3: text'
        numbers = [n for n in range(1, 27) if row.get(f"option {n}") not in (None, "")]
        options = _options_from([row[f"option {n}"] for n in numbers])
        chosen = int(re.match(r"\s*option\s*(\d+)", row["answer"]).group(1))
        answer = LETTERS[numbers.index(chosen)]
        explanation, category = row.get("explanation"), row.get("category")
    record = {"id": f"teleqna-{index:05d}", "question": row["question"], "options": options,
              "answer": answer, "source": "TeleQnA", "category": category}
    return {**record, "explanation": explanation} if explanation else record


def _medqa_4options(row: dict, index: int) -> dict:
    options = {key: row["options"][key] for key in sorted(row["options"]) if row["options"][key] is not None}
    return {"id": f"medqa-{index:05d}", "question": row["question"], "options": options,
            "answer": row["answer_idx"], "source": "MedQA-USMLE", "meta_info": row.get("meta_info")}


def _medmcqa(row: dict, index: int) -> dict:
    if not 0 <= int(row["cop"]) <= 3:
        raise ValueError(f"cop={row['cop']} is not 0-3 (the medmcqa test split has no answers; use validation)")
    record = {"id": f"medmcqa-{row.get('id') or index}", "question": row["question"],
              "options": _options_from([row[k] for k in ("opa", "opb", "opc", "opd")]),
              "answer": LETTERS[int(row["cop"])], "source": "MedMCQA", "subject": row.get("subject_name")}
    return {**record, "explanation": row["exp"]} if _is_text(row.get("exp")) else record


def _agieval_jec_qa(row: dict, index: int) -> dict | None:
    if len(row["gold"]) != 1:
        return None  # multi-answer: the reward is one letter
    # query = "问题：<stem> 选项：(A)… (B)…\n答案：从A到D, 我们应选择"; keep the stem only
    stem = re.sub(r"^\s*问题：", "", row["query"])
    stem = stem.split("\n答案：")[0]
    stem = stem[: stem.rfind("选项：")] if "选项：" in stem else stem
    options = _options_from([re.sub(r"^\s*\([A-Z]\)", "", choice) for choice in row["choices"]])
    return {"id": f"jecqa-{index:05d}", "question": stem.strip(), "options": options,
            "answer": LETTERS[int(row["gold"][0])], "source": "JEC-QA"}


# format name -> converter(row, index) -> contract record, or None to skip the row
HUB_FORMATS: dict[str, Callable[[dict, int], dict | None]] = {
    "teleqna": _teleqna,
    "medqa_4options": _medqa_4options,
    "medmcqa": _medmcqa,
    "agieval_jec_qa": _agieval_jec_qa,
}


def _hub_rows(spec: dict, split: str) -> list:
    import datasets  # heavy import, needed only by the hub source

    try:
        return list(datasets.load_dataset(spec["id"], spec["name"], split=split))
    except Exception as exc:  # network, unknown id, unknown split: say which config entry
        raise DataError(f"data.hub: cannot load {spec['id']!r} (name {spec['name']!r}, split {split!r}): {exc}") from exc


def _convert_hub_split(spec: dict, split: str) -> Located:
    convert = HUB_FORMATS[spec["format"]]
    name, located, errors = f"<hub {spec['id']} split {split}>", [], []
    prefix = spec["id"].replace("/", "__") + (f".{spec['name']}" if spec["name"] else "")
    for index, row in enumerate(_hub_rows(spec, split)):
        where = f"{name}:{index}"
        try:
            record = convert(row, index)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            errors.append(f"{where}: cannot convert with format {spec['format']!r}: {type(exc).__name__}: {exc}")
            continue
        if record is not None:  # ids unique across splits and datasets, and safe in file names
            record["id"] = f"{prefix}:{split}:{record['id']}"
            record["source"] = spec["id"]
            located.append((where, record))
    raise_if_any(errors)
    return located


def load_hub(spec: dict) -> tuple[list[dict], list[dict]]:
    """One hub dataset spec (config data.hub.domains.<d>[i], defaults filled) as (train, test) records."""
    if spec["format"] not in HUB_FORMATS:
        raise DataError(f"data.hub: format {spec['format']!r} of {spec['id']!r} is unknown; "
                        f"known formats: {', '.join(sorted(HUB_FORMATS))}")
    test = _convert_hub_split(spec, spec["test_split"])
    if spec["train_split"]:
        train = _convert_hub_split(spec, spec["train_split"])
    else:  # single-split dataset: the staged data's hash rule carves out the training part
        train = [(w, r) for w, r in test if hash_split(r["question"]) == "train"]
        test = [(w, r) for w, r in test if hash_split(r["question"]) == "test"]
    _check_pair(train, test)
    return [r for _, r in train], [r for _, r in test]


def _load_source(config: dict, domain: str) -> tuple[list[dict], list[dict]]:
    source = domain_source(config, domain)
    if source == "synthetic":
        return synthetic.generate_domain(config["data"]["synthetic"], domain)
    if source == "local":
        return load_local(config, domain)
    if domain not in config["data"]["hub"]["domains"]:
        raise DataError(f"data.hub.domains.{domain}: no hub datasets configured for domain {domain!r}")
    specs = config["data"]["hub"]["domains"][domain]
    train, test = [], []
    for spec in specs:
        spec_train, spec_test = load_hub(spec)
        train, test = train + spec_train, test + spec_test
    return train, test


def _cap(records: list[dict], limit: int | None) -> list[dict]:
    if limit is None or limit >= len(records):
        return records
    shuffled = list(records)
    random.Random(CAP_SEED).shuffle(shuffled)
    return shuffled[:limit]


def make_domain_data(config: dict, domain: str) -> tuple[list[dict], list[dict]]:
    """The domain's (train, test) for ``config``: loaded, validated, overlap-free, capped."""
    train, test = _load_source(config, domain)
    source = domain_source(config, domain)
    _check_pair(_locate(train, f"<{source} {domain} train>"), _locate(test, f"<{source} {domain} test>"))
    return _cap(train, config["data"]["max_train"]), _cap(test, config["data"]["max_test"])


# --- command line ---------------------------------------------------------------------

def _summary(records: list[dict]) -> str:
    sizes = sorted({len(r["options"]) for r in records})
    answers = Counter(r["answer"] for r in records)
    shares = " ".join(f"{letter} {100 * answers[letter] / len(records):.0f}%" for letter in sorted(answers))
    span = f"{sizes[0]}-{sizes[-1]}" if len(sizes) > 1 else f"{sizes[0]}" if sizes else "-"
    return f"{len(records)} rows, options {span}, answers {shares or '-'}"


def _split_counts(records: list[dict]) -> str:
    levels = Counter(r["difficulty"] for r in records if "difficulty" in r)
    by_level = " ".join(f"{level}:{count}" for level, count in sorted(levels.items()))
    return f"{len(records)} rows" + (f"; difficulty {by_level}" if by_level else "")


def validate_files(paths: Iterable[Path]) -> tuple[dict[Path, str | None], list[str]]:
    """``python -m edco validate-data``: check each file against the contract, and train*/test*
    files given from one directory for shared questions. Returns (path -> summary, or None
    when the file failed; every problem, ``file:line: field 'x': ...``); never raises on a bad
    file (``raise_if_any`` turns the problems into one DataError)."""
    summaries: dict[Path, str | None] = {}
    failures: list[str] = []
    loaded: dict[Path, Located] = {}
    for path in map(Path, paths):
        located, problems = _file_problems(path)
        failures += problems
        if problems:
            summaries[path] = None
        else:
            loaded[path] = located
            summaries[path] = _summary([r for _, r in located])
    for train_path, train in loaded.items():
        for test_path, test in loaded.items():
            if (train_path.parent == test_path.parent and train_path.name.startswith("train")
                    and test_path.name.startswith("test")):
                failures += _overlap_errors(train, test)
    return summaries, failures


def make_data(config: dict, domain: str) -> list[tuple[Path, str]]:
    """``python -m edco make-data``: write ``domain``'s train/test JSONL (or, for ``general``,
    the synthetic world's base-pretraining split); returns (file written, row counts)."""
    run = config["run"]
    if domain == "general":
        if config["data"]["source"] != "synthetic":
            raise DataError(f"data.source: the general split exists only for the synthetic source, "
                            f"not {config['data']['source']!r}")
        general = synthetic.generate_general(config["data"]["synthetic"])
        validate_records(general, "<synthetic general>")
        io.write_jsonl(layout.general_file(run), general)
        return [(layout.general_file(run), _split_counts(general))]
    written = []
    for split, records in zip(("train", "test"), make_domain_data(config, domain)):
        io.write_jsonl(layout.data_file(run, domain, split), records)
        written.append((layout.data_file(run, domain, split), _split_counts(records)))
    return written
