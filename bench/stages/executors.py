"""Where clips are scored (issue 19): `make_scoring_pool` picks the local worker processes
(`bench.stages.workers.ScoringPool`) or Ray actors (`bench.stages.ray_pool.RayScoringPool`,
imported only when chosen)."""

from __future__ import annotations

from typing import Any

from bench.stages.workers import ScoringPool, default_workers

EXECUTORS = ("local", "ray")
"""Where clips are scored: local worker processes (`ScoringPool`) or Ray actors (issue 19)."""


def make_scoring_pool(workers: int | None, device: str | None, executor: str = "local",
                      address: str | None = None) -> Any:
    """The scoring pool of ``executor``: `ScoringPool` (``workers`` or `default_workers`), or
    `bench.stages.ray_pool.RayScoringPool` (``workers`` actors; default: one per CPU of the
    local instance or of the cluster at ``address``). Both have ``map``, ``close``,
    ``workers`` and ``threads``."""
    if executor == "ray":
        from bench.stages.ray_pool import RayScoringPool

        return RayScoringPool(workers or (None if address else default_workers(device)),
                              device=device, address=address)
    if executor != "local":
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if address:
        raise ValueError("--ray-address needs --executor ray")
    return ScoringPool(workers or default_workers(device))
