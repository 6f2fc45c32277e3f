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
