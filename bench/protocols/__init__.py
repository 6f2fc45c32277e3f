"""Evaluation protocols, registered by name (SPEC 7; lm-evaluation-harness's tasks are the
model). A new protocol is one module with a ``PROTOCOL`` plus one line here.

``get_protocol(name)`` returns the ``Protocol`` (see ``bench.protocols.base``);
``protocol_names()`` lists them.
"""

from __future__ import annotations

from bench.protocols.base import (
    IDENTITY_RULES,
    LOWER_BOUND,
    Generation,
    Missing,
    Paper,
    Protocol,
    ReportedRows,
)
from bench.registry import Registry, UnknownName

PROTOCOLS = Registry("protocol")
PROTOCOLS.add("default", "bench.protocols.default:PROTOCOL")
PROTOCOLS.add("vougioukas2019", "bench.protocols.vougioukas2019:PROTOCOL")
PROTOCOLS.add("goyal2023", "bench.protocols.goyal2023:PROTOCOL")
PROTOCOLS.add("bhagat2022", "bench.protocols.bhagat2022:PROTOCOL")
PROTOCOLS.add("chen2022au", "bench.protocols.chen2022au:PROTOCOL")


def protocol_names() -> list[str]:
    """Every registered protocol name, sorted."""
    return PROTOCOLS.names()


def get_protocol(name: str) -> Protocol:
    """The protocol registered as ``name``; an unknown name raises ValueError listing the
    known ones."""
    try:
        protocol = PROTOCOLS.get(name)
    except UnknownName as err:
        raise ValueError(str(err)) from None
    if protocol.name != name:
        raise ValueError(f"protocol registered as {name!r} calls itself {protocol.name!r}")
    return protocol


__all__ = ["IDENTITY_RULES", "LOWER_BOUND", "PROTOCOLS", "Generation", "Missing", "Paper",
           "Protocol", "ReportedRows", "get_protocol", "protocol_names"]
