"""SFT on a round's selection (edco/trainer/sft.py), TRL's SFTTrainer on a tiny model: the
selection's order is kept, every parameter changes, TRL's defaults are overridden, and the
completion-positions loss (``sft.fused_lm_head: false``, shared with base pretraining) equals
TRL's loss and gradient."""

from __future__ import annotations

import pytest
import torch
from test_trainer_rounds import MODEL, tiny_config, world  # noqa: F401  (the tiny world fixture)

from edco import trainer
from edco.errors import UserFacingError
from edco.models import load_model
from edco.prompts import chat_messages


def test_sft_trains_in_the_given_order(world, tmp_path):
    config, train, _ = world
    model, tokenizer = load_model(config, MODEL, "cpu")
    records = list(reversed(train[:12]))
    sft = trainer.make_sft_trainer(model, tokenizer, records, config["sft"], 0, "cpu", str(tmp_path / "o"),
                                   config["models"][MODEL])
    seen = [row for batch in sft.get_train_dataloader() for row in batch["input_ids"].tolist()]
    pad = tokenizer.pad_token_id
    prompts = [tokenizer.apply_chat_template(chat_messages(r), add_generation_prompt=True, return_dict=True)["input_ids"]
               for r in records]
    for row, prompt in zip(seen, prompts, strict=True):
        tokens = [t for t in row if t != pad]
        assert tokens[: len(prompt)] == prompt


def test_every_parameter_changes_and_loss_is_logged(world):
    config, train, _ = world
    model, tokenizer = load_model(config, MODEL, "cpu")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    logs = trainer.train_sft(model, tokenizer, train[:16], config["sft"], 0, "cpu", config["models"][MODEL])
    assert len(logs) == trainer.sft_steps(16, config["sft"])
    assert all("loss" in row and "grad_norm" in row for row in logs)
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged


@pytest.mark.parametrize("checkpointing", [False, True])
def test_trl_defaults_are_overridden_explicitly(tmp_path, checkpointing):
    """TRL defaults bf16 and gradient checkpointing to True: on CPU bf16 is off, and
    checkpointing is what the paradigm's config says, for both trainers."""
    config = tiny_config("t")
    model_cfg = next(iter(config["models"].values()))
    for section in ("sft", "rl"):
        cfg = {**config[section], "gradient_checkpointing": checkpointing}
        args = (trainer.sft_config(cfg, 0, str(tmp_path), "cpu") if section == "sft"
                else trainer.grpo_config(cfg, 0, str(tmp_path), "cpu", model_cfg))
        assert args.bf16 is False and args.gradient_checkpointing is checkpointing


def test_completion_positions_loss_equals_trls_fused_loss_and_gradient(world, tmp_path):
    """sft.fused_lm_head: false (the plain LM head on completion tokens, the CPU study's faster
    path) trains on exactly TRL's loss: same value and same gradient on the same batch."""
    import copy

    config, train, _ = world
    model, tokenizer = load_model(config, MODEL, "cpu")
    results = []
    for fused in (True, False):
        copy_of_model = copy.deepcopy(model)
        sft = trainer.make_sft_trainer(copy_of_model, tokenizer, train[:8], {**config["sft"], "fused_lm_head": fused},
                                       0, "cpu", str(tmp_path / str(fused)), config["models"][MODEL])
        assert (type(sft).__name__ == "CompletionLossSFTTrainer") is not fused
        batch = next(iter(sft.get_train_dataloader()))
        copy_of_model.train()
        loss = sft.compute_loss(copy_of_model, dict(batch))
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in copy_of_model.parameters()]))
    (fused_loss, fused_grads), (plain_loss, plain_grads) = results
    assert plain_loss == pytest.approx(fused_loss, rel=1e-5)
    for a, b in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_completion_positions_loss_refuses_several_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserFacingError, match="fused_lm_head: true"):
        trainer.sft_trainer_class({"fused_lm_head": False})
    assert trainer.sft_trainer_class({"fused_lm_head": True}).__name__ == "SFTTrainer"
