"""Optional checksum verification of a dataset tree against a manifest (SPEC 4.2).

A manifest is a CSV with the header ``path,sha256,bytes``: one row per file, ``path``
relative to the root with ``/`` separators (the format of the CREMA-D metadata's
``manifest.csv``). ``verify_manifest`` reports missing files, size and sha256 mismatches, and
extra files; ``write_manifest`` makes a manifest of a tree. Files are hashed in 1 MiB chunks,
so memory stays flat on multi-GB releases.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bench.fileio import atomic_write_text

HEADER = ("path", "sha256", "bytes")
CHUNK = 1 << 20


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative, "/"-separated
    sha256: str
    bytes: int


@dataclass
class ManifestReport:
    """What ``verify_manifest`` found; ``ok`` when nothing is wrong."""

    checked: int = 0  # manifest rows looked at
    hashed: int = 0  # files whose sha256 was computed
    missing: list[str] = field(default_factory=list)
    size_mismatch: list[tuple[str, int, int]] = field(default_factory=list)  # path, want, got
    hash_mismatch: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.size_mismatch or self.hash_mismatch or self.extra)

    def lines(self) -> list[str]:
        """One line per problem, for the user."""
        out = [f"missing: {p}" for p in self.missing]
        out += [f"size mismatch: {p} has {got} bytes, manifest says {want}"
                for p, want, got in self.size_mismatch]
        out += [f"sha256 mismatch: {p}" for p in self.hash_mismatch]
        out += [f"extra file (not in the manifest): {p}" for p in self.extra]
        return out

    def summary(self) -> str:
        return (f"{self.checked} files checked ({self.hashed} hashed): {len(self.missing)} "
                f"missing, {len(self.size_mismatch)} size mismatches, {len(self.hash_mismatch)} "
                f"sha256 mismatches, {len(self.extra)} extra")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(manifest_csv: str | Path) -> list[ManifestEntry]:
    """Rows of a ``path,sha256,bytes`` CSV; ValueError names the first bad row."""
    entries = []
    with open(manifest_csv, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != HEADER:
            raise ValueError(f"{manifest_csv}: expected the header 'path,sha256,bytes', "
                             f"got {header!r}")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                path, sha, size = row
                entry = ManifestEntry(_safe_relative(path), sha.strip().lower(), int(size))
            except ValueError as err:
                raise ValueError(f"{manifest_csv}:{line_no}: bad row {row!r} ({err})") from err
            entries.append(entry)
    return entries


def _safe_relative(path: str) -> str:
    """``path`` if it is relative and stays inside the root; else ValueError."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise ValueError(f"path {path!r} must be relative to the root, with '/' separators")
    return pure.as_posix()


def _progress(items: list, enabled: bool, desc: str) -> list:
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="file")


def verify_manifest(root: str | Path, manifest_csv: str | Path, *, check_hashes: bool = True,
                    progress: bool = False) -> ManifestReport:
    """Check the files under ``root`` against ``manifest_csv``.

    Sizes are always compared; sha256 only when ``check_hashes`` (slow on a full release) and
    the size matches. Extra files are looked for only in the top-level folders that the
    manifest lists (for CREMA-D: ``VideoFlash``, ``AudioWAV``, ``AudioMP3``), so the release's
    other files and folders are not reported.
    """
    root = Path(root)
    entries = read_manifest(manifest_csv)
    report = ManifestReport(checked=len(entries))
    for entry in _progress(entries, progress, "verifying"):
        path = root / entry.path
        if not path.is_file():
            report.missing.append(entry.path)
            continue
        size = path.stat().st_size
        if size != entry.bytes:
            report.size_mismatch.append((entry.path, entry.bytes, size))
        elif check_hashes:
            report.hashed += 1
            if sha256_file(path) != entry.sha256:
                report.hash_mismatch.append(entry.path)
    listed = {e.path for e in entries}
    folders = sorted({PurePosixPath(e.path).parts[0] for e in entries if "/" in e.path})
    for folder in folders:
        for path in _files_under(root / folder):
            rel = path.relative_to(root).as_posix()
            if rel not in listed:
                report.extra.append(rel)
    report.extra.sort()
    return report


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def write_manifest(root: str | Path, out_csv: str | Path, *, folders: list[str] | None = None,
                   progress: bool = False) -> int:
    """Write a ``path,sha256,bytes`` manifest of every file under ``root`` (or under the given
    top-level ``folders``), sorted by path; returns the number of files. ``out_csv`` itself is
    left out when it lies inside the root."""
    root = Path(root)
    out_csv = Path(out_csv)
    tops = [root / f for f in folders] if folders is not None else [root]
    files = sorted({p for top in tops for p in _files_under(top)
                    if p.resolve() != out_csv.resolve()},
                   key=lambda p: p.relative_to(root).as_posix())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for path in _progress(files, progress, "hashing"):
        writer.writerow([path.relative_to(root).as_posix(), sha256_file(path),
                         path.stat().st_size])
    atomic_write_text(out_csv, buffer.getvalue())
    return len(files)
