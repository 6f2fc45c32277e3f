"""Where user-supplied weights files live, and how their files are fingerprinted (SPEC 5).

Shared by the judges that load official weights files (:mod:`bench.judges.syncnet`,
:mod:`bench.judges.inception`) and by the generators' perceptual loss
(:mod:`bench.generators.perceptual`): the folder is ``$TALKBENCH_WEIGHTS``, or
``~/.cache/talkbench/weights``; every file that produced a number is named in the provenance
with its sha256. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

WEIGHTS_DIR_ENV = "TALKBENCH_WEIGHTS"
"""Environment variable that overrides the weights folder."""


def weights_dir() -> Path:
    """Folder for judge weights: ``$TALKBENCH_WEIGHTS`` or ``~/.cache/talkbench/weights``."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "talkbench" / "weights"


def sha256_of_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
