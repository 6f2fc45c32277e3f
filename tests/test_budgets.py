"""Every budget of every registered generator is a step count (issue 13): no wall-clock limit,
so the same command and seed train the same weights on any machine."""

from __future__ import annotations

import dataclasses

import pytest

from bench.adapters import BUDGETS, adapter_class, model_names


@pytest.mark.parametrize("name", model_names())
def test_generator_budgets_are_step_counts(name):
    cls = adapter_class(name)
    configs = getattr(cls, "configs", {})
    if not cls.trainable:
        return
    assert set(BUDGETS) <= set(configs), f"{name}: budgets {sorted(configs)}"
    for budget in BUDGETS:
        cfg = configs[budget]
        fields = {f.name for f in dataclasses.fields(cfg)}
        for field in fields:
            if field.endswith("max_seconds"):
                assert getattr(cfg, field) is None, f"{name} {budget}: {field} is set"
        steps = [getattr(cfg, f) for f in fields if f == "steps" or f.endswith("_steps")]
        assert steps and all(isinstance(s, int) and 0 <= s < 10**7 for s in steps), \
            f"{name} {budget}: steps {steps}"


def test_training_uses_a_fixed_thread_count_so_checkpoints_match_across_machines(
        synth_native_root, tmp_path, monkeypatch):
    """wav2lip's 20-step smoke checkpoint differs between 1 and 2 torch threads (measured);
    the train stage pins the count (`bench.core.devices.training_threads`), so a process on a
    1-core machine and one on a 2-core machine train the same weights."""
    import torch
    from click.testing import CliRunner

    from bench.cli import main
    from bench.core.devices import TRAIN_THREADS_ENV
    from bench.core.distributed import tensor_digest

    monkeypatch.delenv(TRAIN_THREADS_ENV, raising=False)
    before = torch.get_num_threads()
    digests = []
    try:
        for ambient in (1, 2):
            torch.set_num_threads(ambient)  # what the machine would give torch by default
            runs = tmp_path / f"runs{ambient}"
            result = CliRunner().invoke(main, [
                "train", "--model", "wav2lip", "--budget", "smoke", "--set", "steps=20",
                "--dataset", "synthetic", "--root", str(synth_native_root), "--quiet",
                "--cache-dir", str(tmp_path / "cache"), "--runs-dir", str(runs),
                "--workers", "1"])
            assert result.exit_code == 0, result.output
            assert torch.get_num_threads() == ambient  # restored after training
            (weights,) = runs.glob("synthetic/*/wav2lip/checkpoint/generator.pt")
            digests.append(tensor_digest(torch.load(weights, weights_only=True)))
    finally:
        torch.set_num_threads(before)
    assert digests[0] == digests[1]


def test_a_retuned_budget_retrains_instead_of_reusing_the_old_checkpoint(
        synth_native_root, tmp_path, monkeypatch):
    """The checkpoint's cache key holds the budget's values, not only its name: after a demo
    budget is retuned (steps 500 -> 2000, say), the next run trains anew."""
    import json

    from click.testing import CliRunner

    from bench.cli import main

    cls = adapter_class("static-gan")
    args = ["train", "--model", "static-gan", "--budget", "smoke", "--dataset", "synthetic",
            "--root", str(synth_native_root), "--quiet", "--cache-dir", str(tmp_path / "cache"),
            "--runs-dir", str(tmp_path / "runs"), "--workers", "1"]

    def steps_trained() -> int:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        (done,) = (tmp_path / "runs").glob("synthetic/*/static-gan/checkpoint/done.json")
        return json.loads(done.read_text())["log"]["steps"]

    first = steps_trained()
    assert steps_trained() == first  # same budget: the checkpoint is reused
    monkeypatch.setitem(cls.configs, "smoke",
                        dataclasses.replace(cls.configs["smoke"], steps=first + 2))
    assert steps_trained() == first + 2
