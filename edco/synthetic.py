"""The smoke world: seeded synthetic multiple-choice domains with a known difficulty ladder.

    python -c "from edco.synthetic import generate_domain; print(generate_domain({}, 'law')[0][0])"
    python -m edco make-data --config config/smoke.yaml --domain law      # writes the JSONL

Each domain (communication, medicine, law) has a seeded set of entities, each with a hidden
class 0..3: *knowledge* a base model lacks and the domain's training pool teaches (docs/design.md#the-synthetic-world).
A level-k question asks for the class of one entity (k = 1) or for the sum mod 4 of k entities'
classes; the reference answer recalls each fact, then adds step by step:

    Facts: kornet is 2. meslink is 3. 2 + 3 = 1. vadley is 1. 1 + 1 = 2.
    Answer: C

Options are the domain's four class names in one fixed order, so the letter is a learnable
function of the value ("picking a value among shuffled options" is an induction task a tiny
model does not learn in minutes). Test questions reuse the training facts in new
compositions (level >= 2: an entity set no training question uses) or new phrasings
(level 1: an (entity, template) pair no training question uses).

The general split (base pretraining) teaches the format, the recall-then-add chain and the
mod-4 arithmetic, but none of the domain facts. By default it also makes the base model a
starting point GRPO can improve (results/reference/cpu_study/README.md, "The world"): its answer to a domain
question names that question's entities, in order, and is unsure of their values. Four kinds
of general question (``generate_general``): facts stated in the question, listed in shuffled
order, about general *and* domain entities with values drawn per question; facts recalled
about general entities, which keep one class each; and "unknown" questions about domain
entities, which state nothing and answer with values drawn afresh. ``edco.prompts.quick_answer_text``
is the short answer taught for the paper's quick-answer prompt (the prefix estimator's input).

Everything is a function of ``cfg["seed"]``: same config, same records, byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from edco.config import section_defaults
from edco.errors import UserFacingError

LETTERS = "ABCD"
N_CLASSES = 4


class SyntheticError(UserFacingError):
    """A synthetic-world config that cannot produce the requested records."""


@dataclass(frozen=True)
class Flavour:
    """What a domain's questions talk about; the facts themselves are seeded."""

    noun: str  # what an entity is
    attribute: str  # what its hidden class is called
    classes: tuple[str, str, str, str]  # option texts, always in this order (A..D)
    suffixes: tuple[str, ...]  # make entity names look like the domain's jargon


DOMAINS = {
    "communication": Flavour("protocol", "layer", ("Link", "Network", "Transport", "Session"),
                             ("net", "link", "com", "tel")),
    "medicine": Flavour("drug", "dose tier", ("Trace", "Low", "Standard", "High"),
                        ("ol", "ine", "ex", "ide")),
    "law": Flavour("statute", "penalty class", ("Warning", "Fine", "Probation", "Custody"),
                   ("ton", "ham", "ley", "ford")),
}
# Base pretraining also sees a neutral flavour, so the format is not tied to the three domains.
GENERAL = Flavour("item", "group", ("Red", "Green", "Blue", "Gold"), ("ar", "ik", "um", "o"))

# Templates never start with a name: a name is always " name", one token wherever it occurs.
# Level 1 asks about one entity. Many phrasings, because the test split needs (entity,
# phrasing) pairs that no training question uses: entities x templates >= train + test.
SINGLE_TEMPLATES = (
    "What is the {attr} of the {noun} {names}?",
    "Which {attr} does the {noun} {names} have?",
    "The {noun} {names} belongs to which {attr}?",
    "Name the {attr} of {names}.",
    "To which {attr} is the {noun} {names} assigned?",
    "Pick the {attr} of the {noun} called {names}.",
    "Identify the {attr} of {names}.",
    "What {attr} applies to {names}?",
    "Select the correct {attr} for the {noun} {names}.",
    "Consider the {noun} {names}. What is its {attr}?",
    "Classify the {noun} {names} by {attr}.",
    "Under which {attr} is {names} listed?",
)
# Level k >= 2: new entity sets make new test questions, so few phrasings suffice.
SUM_TEMPLATES = (
    "What is the sum modulo 4 of the {attr} numbers of {names}?",
    "Add the {attr} numbers of the {noun}s {names} modulo 4. Which {attr} results?",
    "Which {attr} is the sum, modulo 4, of the {attr} numbers of {names}?",
    "Sum the {attr} numbers of {names} and reduce modulo 4. Which {attr} is it?",
)

ALL_SUFFIXES = tuple(s for f in (*DOMAINS.values(), GENERAL) for s in f.suffixes)
_ONSETS = "b d f g k l m n p r s t v z".split()
_VOWELS = "a e i o u".split()
_CODAS = ["", "n", "r", "s", "l", "m"]


def _settings(cfg: dict) -> dict:
    """``cfg`` over the schema's ``data.synthetic`` defaults: a loaded config is already filled;
    a hand-built section (tests, benchmarks) may name only what it changes."""
    cfg = {**section_defaults("data", "synthetic"), **cfg}
    if cfg["entities"] < N_CLASSES:
        raise SyntheticError(f"data.synthetic.entities: {cfg['entities']} < {N_CLASSES}; every class needs an entity")
    return cfg


# --------------------------------------------------------------------------- the world
def _name(rng: random.Random, suffixes: tuple[str, ...]) -> str:
    """A pronounceable one-syllable stem plus a domain-flavoured suffix, e.g. 'kornet'.
    Short on purpose: about two tokens, so a chain of three facts stays a short sequence."""
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) + rng.choice(suffixes)


def _names(cfg: dict) -> dict[str, list[str]]:
    """Entity names of every domain and of the general split: all distinct, all seeded.

    Drawn in one pass from one generator so that adding a domain never renames another's
    entities, and so that the general split can never reuse a domain entity.
    """
    rng = random.Random(f"{cfg['seed']}/names")
    taken: set[str] = set()
    out: dict[str, list[str]] = {}
    # General entities use every suffix: the base model sees all the word pieces of domain
    # names (their embeddings get trained) without seeing a single domain entity.
    wanted = [(d, DOMAINS[d].suffixes, cfg["entities"]) for d in DOMAINS]
    wanted.append(("general", ALL_SUFFIXES, _general_entity_count(cfg)))
    for key, suffixes, count in wanted:
        names = []
        while len(names) < count:
            name = _name(rng, suffixes)
            if name not in taken:
                taken.add(name)
                names.append(name)
        out[key] = names
    return out


def _general_entity_count(cfg: dict) -> int:
    return 4 * cfg["entities"]


def facts(cfg: dict, domain: str) -> dict[str, int]:
    """name -> hidden class of one domain; classes balanced (each used entities/4 times, ±1)."""
    cfg = _settings(cfg)
    _check_domain(domain)
    return _hidden_classes(cfg, domain, _names(cfg)[domain])


def _hidden_classes(cfg: dict, key: str, names: list[str]) -> dict[str, int]:
    """Balanced classes for ``names``, shuffled by a generator seeded per ``key``."""
    rng = random.Random(f"{cfg['seed']}/facts/{key}")
    classes = [i % N_CLASSES for i in range(len(names))]
    rng.shuffle(classes)
    return dict(zip(names, classes))


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise SyntheticError(f"unknown synthetic domain {domain!r}; the smoke world has: {', '.join(DOMAINS)}")


# --------------------------------------------------------------------------- records
def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _record(rid: str, source: str, flavour: Flavour, template: str, names: list[str],
            values: list[int], stated: bool, fact_order: list[int] | None = None) -> dict:
    """One contract record. ``stated``: the facts are given in the question (general split),
    in ``fact_order`` (indices into ``names``; default the question's order)."""
    total = sum(values) % N_CLASSES
    question = template.format(attr=flavour.attribute, noun=flavour.noun, names=_join(names))
    if stated:
        order = fact_order or range(len(names))
        question = "Facts: " + " ".join(f"{names[i]} is {values[i]}." for i in order) + "\n" + question
    # "Facts: " opens both the general split's stated facts and every chain, so each name
    # follows a space in both places and is the same token when recalled as when read.
    # Recall a fact, add it to the running sum, recall the next ("a is 2. b is 3. 2 + 3 = 1.
    # c is 1. 1 + 1 = 2."). Each step is a 16-entry table whose operands sit at fixed
    # distances (names are one token), which a tiny model learns in minutes; a k-ary sum
    # after all the facts is not. Spaces keep every digit the same token (" 3", never "3").
    chain = ["Facts:", f"{names[0]} is {values[0]}."]
    running = values[0]
    for n, v in zip(names[1:], values[1:]):
        chain.append(f"{n} is {v}. {running} + {v} = {(running + v) % N_CLASSES}.")
        running = (running + v) % N_CLASSES
    return {
        "id": rid,
        "question": question,
        "options": {LETTERS[i]: c for i, c in enumerate(flavour.classes)},  # A..D = 0..3
        "answer": LETTERS[total],
        "source": source,
        "difficulty": len(values),
        "explanation": " ".join(chain),
    }


class _Quota:
    """Accept candidates until every answer value has its share: balanced answer letters."""

    def __init__(self, n: int):
        self.left = [n // N_CLASSES + (i < n % N_CLASSES) for i in range(N_CLASSES)]

    def take(self, value: int) -> bool:
        if self.left[value] <= 0:
            return False
        self.left[value] -= 1
        return True

    def full(self) -> bool:
        return not any(self.left)


def _single_candidates(rng: random.Random, names: list[str]) -> list[tuple[str, int]]:
    """(entity, template index) pairs, round-robin over entities so every entity's fact
    is spread over the split (each entity gets a fresh phrasing per round)."""
    perms = {n: rng.sample(range(len(SINGLE_TEMPLATES)), len(SINGLE_TEMPLATES)) for n in names}
    order = rng.sample(names, len(names))
    return [(n, perms[n][r]) for r in range(len(SINGLE_TEMPLATES)) for n in order]


def _level1(rng, fact: dict[str, int], n_test: int, n_train: int, domain: str):
    """Test takes each candidate pair first, train the rest: no phrasing of a test question
    ever appears in train, while every test fact is taught by other phrasings."""
    splits = {"test": [], "train": []}
    candidates = iter(_single_candidates(rng, list(fact)))
    for split, n in (("test", n_test), ("train", n_train)):
        quota = _Quota(n)
        for name, t in candidates:
            if quota.take(fact[name]):
                splits[split].append((SINGLE_TEMPLATES[t], [name]))
            if quota.full():
                break
        else:
            raise SyntheticError(
                f"domain {domain!r}, level 1: only {len(fact)} entities x {len(SINGLE_TEMPLATES)} phrasings; "
                f"cannot draw {n_test} test + {n_train} train distinct questions with balanced answers. "
                f"Raise data.synthetic.entities or lower train_per_level/test_per_level."
            )
    return splits["train"], splits["test"]


def _level_k(rng, fact: dict[str, int], k: int, n_test: int, n_train: int, domain: str):
    """Level k >= 2: test entity *sets* never occur in train (new compositions of known facts)."""
    names = list(fact)
    test_sets: set[tuple[str, ...]] = set()
    seen_questions: set[tuple] = set()
    splits = {"test": [], "train": []}
    for split, n in (("test", n_test), ("train", n_train)):
        quota, tries = _Quota(n), 0
        while not quota.full():
            tries += 1
            if tries > 200 * (n + 10):
                raise SyntheticError(
                    f"domain {domain!r}, level {k}: cannot draw {n} {split} questions from "
                    f"{len(names)} entities; raise data.synthetic.entities or lower {split}_per_level"
                )
            chosen = rng.sample(names, k)
            key = tuple(sorted(chosen))
            template = rng.randrange(len(SUM_TEMPLATES))
            if (tuple(chosen), template) in seen_questions:
                continue
            if key in test_sets:  # a test set is used once, and never by train
                continue
            if quota.take(sum(fact[c] for c in chosen) % N_CLASSES):
                seen_questions.add((tuple(chosen), template))
                if split == "test":
                    test_sets.add(key)
                splits[split].append((SUM_TEMPLATES[template], chosen))
    return splits["train"], splits["test"]


def generate_domain(cfg: dict, domain: str) -> tuple[list[dict], list[dict]]:
    """(train, test) records of one synthetic domain; ``cfg`` is ``config["data"]["synthetic"]``."""
    cfg = _settings(cfg)
    _check_domain(domain)
    fact, flavour = facts(cfg, domain), DOMAINS[domain]
    train, test = [], []
    for k in cfg["levels"]:
        rng = random.Random(f"{cfg['seed']}/{domain}/level{k}")
        if k == 1:
            tr, te = _level1(rng, fact, cfg["test_per_level"], cfg["train_per_level"], domain)
        else:
            tr, te = _level_k(rng, fact, k, cfg["test_per_level"], cfg["train_per_level"], domain)
        for split, rows, out in (("train", tr, train), ("test", te, test)):
            for i, (template, names) in enumerate(rows):
                out.append(_record(f"{domain}-{split}-L{k}-{i:05d}", f"synthetic-{domain}", flavour,
                                   template, names, [fact[n] for n in names], stated=False))
    return train, test


def _fresh_names(rng: random.Random, k: int, avoid: set[str]) -> list[str]:
    """k new names for one stated general question (``general_fresh_names``): no domain or
    general entity, so copying the name from the question is the only way to write it."""
    out: list[str] = []
    while len(out) < k:
        name = _name(rng, ALL_SUFFIXES)
        if name not in avoid and name not in out:
            out.append(name)
    return out


def _stated_names(rng: random.Random, k: int, cfg: dict, names: list[str], domain_names: list[str],
                  avoid: set[str]) -> list[str]:
    """The k entities of one stated general question (see ``generate_general``)."""
    if cfg["general_fresh_names"]:
        return _fresh_names(rng, k, avoid)
    return rng.sample(names + domain_names if cfg["general_domain_names"] else names, k)


def general_facts(cfg: dict) -> dict[str, int]:
    """name -> hidden class of the general entities, used only by recall questions
    (``general_recall``); balanced like a domain's."""
    cfg = _settings(cfg)
    return _hidden_classes(cfg, "general", _names(cfg)["general"])


def generate_general(cfg: dict, sample: str = "train") -> list[dict]:
    """The base-pretraining split: the domain questions' shapes, ``general_size`` of them,
    balanced over levels and answer letters. Each question is one of

    - *stated*: "Facts: a is 2. b is 0." before the question, values drawn per question, so
      there is nothing to memorise, only reading, chaining and adding. Its entities are the
      general ones, with ``general_domain_names`` also the domains' (the base model then
      reads and writes every domain name, and learns none of their classes: the stated
      values are random); with ``general_shuffle_facts`` the facts come in another order
      than the question's, so the chain must follow the question's names and look each
      value up, as a domain question (which states nothing) needs;
    - *recalled* (share ``general_recall``): nothing stated, about general entities, which
      keep one class each (``general_facts``): the base model learns to recall a fact about
      the entity asked, a circuit the domain's facts can later be written into;
    - *unknown* (share ``general_unknown``): nothing stated, about domain entities (general
      ones without ``general_domain_names``), values drawn afresh per question: the base
      model names the entity asked and is unsure of its value, so GRPO's rollouts differ
      where the reward does.

    Without the four options every question is stated, over general entities only: the split
    of the reference results before the second CPU study (issue 18) (a test pins it).
    ``general_fresh_names`` (experimental) gives every stated question new names instead.

    ``sample`` names an independent draw over the same entities (e.g. "heldout" for
    checking the base model on questions it was not trained on)."""
    cfg = _settings(cfg)
    every_name = _names(cfg)
    names = every_name["general"]
    hidden = _hidden_classes(cfg, "general", names)
    avoid = {n for ns in every_name.values() for n in ns}
    domain_names = [n for d in DOMAINS for n in every_name[d]]
    flavours = [GENERAL, *DOMAINS.values()]
    levels = cfg["levels"]
    rng = random.Random(f"{cfg['seed']}/general" + ("" if sample == "train" else f"/{sample}"))
    out = []
    per_level = [cfg["general_size"] // len(levels) + (i < cfg["general_size"] % len(levels))
                 for i in range(len(levels))]
    for k, n in zip(levels, per_level):
        quota = _Quota(n)
        while not quota.full():
            # Draws in the order they were made before general_recall existed (rng.random()
            # only when it is on), so a config without it keeps its split, hence its models.
            recall = cfg["general_recall"] > 0 and rng.random() < cfg["general_recall"]
            unknown = not recall and cfg["general_unknown"] > 0 and rng.random() < cfg["general_unknown"]
            chosen = rng.sample(names, k) if recall else None
            values = [hidden[c] for c in chosen] if recall else [rng.randrange(N_CLASSES) for _ in range(k)]
            if not quota.take(sum(values) % N_CLASSES):
                continue
            templates = SINGLE_TEMPLATES if k == 1 else SUM_TEMPLATES
            flavour, template = rng.choice(flavours), rng.choice(templates)
            if unknown and cfg["general_domain_names"]:  # unsure of the domain's entities, not of recalled ones
                chosen = rng.sample(domain_names, k)
            chosen = chosen or _stated_names(rng, k, cfg, names, domain_names, avoid)
            stated = not (recall or unknown)
            order = rng.sample(range(k), k) if stated and cfg["general_shuffle_facts"] else None
            prefix = "general" if sample == "train" else f"general-{sample}"
            out.append(_record(f"{prefix}-L{k}-{len(out):06d}", "synthetic-general", flavour, template,
                               chosen, values, stated=stated, fact_order=order))
    rng.shuffle(out)
    return out
