"""The ``synthetic`` dataset: the embedded corpus read through its ``corpus.json`` (SPEC 4.5).

The root is a folder written by ``bench.data.synth.build_corpus`` (``bench synth --out``).
Every clip listed in ``corpus.json`` becomes a ``ClipRef`` with its video, its separate audio
file when the layout has one (``crema-d``), its labels and its truth JSON. A listed media file
that is missing is reported in ``Scan.problems`` and the clip is left out; an empty (0-byte)
media file is kept (the clip counts in its split part, and preparation fails it with the
reason); an empty truth file is reported and not used.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.data.clip import ClipRef
from bench.data.datasets import Dataset, DatasetError, Scan

MANIFEST = "corpus.json"


class SyntheticDataset(Dataset):
    """The embedded synthetic talking-face corpus."""

    name = "synthetic"
    default_split = "speakers-70-15-15"
    description = ("embedded synthetic corpus: eSpeak NG speech, faces morphed from two shipped "
                   "photographs, with per-clip ground truth (bench synth)")

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise DatasetError(f"synthetic: {self.root} has no {MANIFEST}; build the corpus "
                               f"with `bench synth --out {self.root}`")
        try:
            self.manifest = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DatasetError(f"synthetic: {manifest} is not readable JSON ({err})") from err
        if not isinstance(self.manifest, dict) or not isinstance(self.manifest.get("clips"),
                                                                   list):
            raise DatasetError(f"synthetic: {manifest} has no clip list")

    def _file(self, rel: str | None, what: str, clip_id: str,
              problems: list[str], empty_ok: bool = False) -> Path | None:
        if not rel:
            return None
        path = self.root / rel
        if not path.is_file():
            problems.append(f"{clip_id}: {what} {rel} is missing")
            return None
        if path.stat().st_size == 0 and not empty_ok:
            problems.append(f"{clip_id}: {what} {rel} is empty (0 bytes)")
            return None
        return path

    def scan(self) -> Scan:
        clips: list[ClipRef] = []
        problems: list[str] = []
        for entry in self.manifest["clips"]:
            if not isinstance(entry, dict) or "clip_id" not in entry:
                problems.append(f"{MANIFEST}: malformed clip entry {entry!r:.80}")
                continue
            clip_id = str(entry["clip_id"])
            video = self._file(entry.get("video"), "video", clip_id, problems, empty_ok=True)
            audio = self._file(entry.get("audio"), "audio", clip_id, problems, empty_ok=True)
            truth = self._file(entry.get("truth"), "truth", clip_id, problems)
            if video is None or (entry.get("audio") and audio is None):
                continue
            clips.append(ClipRef(dataset=self.name, speaker=str(entry.get("speaker")),
                                 clip_id=clip_id, video=video, audio=audio,
                                 emotion=entry.get("emotion"),
                                 intensity=entry.get("intensity"),
                                 transcript=entry.get("transcript"), truth=truth))
        return Scan(clips=clips, problems=problems)
