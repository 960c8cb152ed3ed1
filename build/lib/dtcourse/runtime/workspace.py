"""Copy the student notebooks into a workspace without ever losing a student's edits.

The workspace keeps a manifest with the SHA-256 of every file as it was copied. A file
whose content still matches the manifest is the student's untouched copy and may be
updated when the release changes; a file that differs was edited, so it is kept and the
new release version is written next to it (``notebook.new.ipynb``). Files are replaced
atomically and the manifest is written last, so an interrupted sync is simply repeated.
Nothing in the workspace is ever deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dtcourse.errors import DTCourseError

MANIFEST_NAME = ".dtcourse-manifest.json"
MANIFEST_FORMAT = 1
_SKIPPED_DIRS = frozenset({"__pycache__"})


@dataclass(frozen=True)
class Kept:
    """An edited file left alone; ``new_version`` is where the release's copy went."""

    path: str
    new_version: str


@dataclass(frozen=True)
class SyncReport:
    """What a sync did, by path relative to the workspace (POSIX separators)."""

    copied: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept: tuple[Kept, ...]
    notes: tuple[str, ...] = ()

    def lines(self) -> tuple[str, ...]:
        """Human-readable lines, one per change."""
        lines = [*self.notes]
        lines.extend(f"copied {path}" for path in self.copied)
        lines.extend(f"updated {path}" for path in self.updated)
        lines.extend(
            f"kept your edited {kept.path}; the new version is at {kept.new_version}"
            for kept in self.kept
        )
        if self.unchanged:
            lines.append(f"{len(self.unchanged)} file(s) already up to date")
        return tuple(lines)


def default_release_root() -> Path:
    """The release notebooks shipped inside the package (``dtcourse/runtime/notebooks``)."""
    return Path(__file__).resolve().with_name("notebooks")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def release_files(release: Path) -> tuple[str, ...]:
    """Every file of the release, skipping hidden entries and caches, in sorted order."""
    if not release.is_dir():
        raise DTCourseError(
            f"no release folder at {release}: run `dtcourse build` first to generate the "
            "student notebooks"
        )
    found = []
    for path in sorted(release.rglob("*")):
        relative = path.relative_to(release)
        if any(part.startswith(".") or part in _SKIPPED_DIRS for part in relative.parts):
            continue
        if path.is_file():
            found.append(relative.as_posix())
    if not found:
        raise DTCourseError(
            f"the release folder {release} has no files: run `dtcourse build` to generate "
            "the student notebooks"
        )
    return tuple(found)


def sync_release(release: Path, workspace: Path) -> SyncReport:
    """Bring ``workspace`` up to date with ``release``, keeping every edited file."""
    files = release_files(release)
    if workspace.exists() and not workspace.is_dir():
        raise DTCourseError(
            f"the workspace {workspace} is a file, not a folder: pass --workspace DIR"
        )
    try:
        workspace.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DTCourseError(
            f"cannot create the workspace {workspace}: {error.strerror or error}; "
            "pass --workspace DIR"
        ) from None
    manifest, notes = _read_manifest(workspace)
    copied_hashes: dict[str, str] = dict(manifest["files"])
    sidecars: dict[str, str] = dict(manifest["sidecars"])
    copied: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    kept: list[Kept] = []
    for relative in files:
        source = release / relative
        target = workspace / relative
        new_hash = sha256(source)
        if not target.exists() and not target.is_symlink():
            _install(source, target)
            copied.append(relative)
            copied_hashes[relative] = new_hash
            continue
        current = sha256(target) if target.is_file() else None
        if current == new_hash:
            unchanged.append(relative)
            copied_hashes[relative] = new_hash
        elif current is not None and current == copied_hashes.get(relative):
            _install(source, target)
            updated.append(relative)
            copied_hashes[relative] = new_hash
        else:
            side = _place_new_version(source, workspace, relative, new_hash, sidecars)
            kept.append(Kept(relative, side))
    _write_manifest(workspace, release, copied_hashes, sidecars)
    return SyncReport(tuple(copied), tuple(updated), tuple(unchanged), tuple(kept), notes)


def _place_new_version(
    source: Path, workspace: Path, relative: str, new_hash: str, sidecars: dict[str, str]
) -> str:
    """Write the release's version beside an edited file, never over another edit."""
    for candidate in _sidecar_names(relative):
        target = workspace / candidate
        if not target.exists() and not target.is_symlink():
            _install(source, target)
        elif not target.is_file():
            continue
        else:
            current = sha256(target)
            if current == new_hash:
                pass
            elif current == sidecars.get(candidate):
                _install(source, target)
            else:
                continue
        sidecars[candidate] = new_hash
        return candidate
    raise DTCourseError(  # pragma: no cover - a hundred edited sidecars
        f"too many edited copies of {relative} in {workspace}; tidy them up and retry"
    )


def _sidecar_names(relative: str) -> Iterator[str]:
    path = PurePosixPath(relative)
    stem, suffix = path.stem, path.suffix
    yield str(path.with_name(f"{stem}.new{suffix}"))
    for number in range(2, 100):
        yield str(path.with_name(f"{stem}.new-{number}{suffix}"))


def _install(source: Path, target: Path) -> None:
    """Copy atomically: a temporary file in the target's folder, then a rename."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".copy"
        )
        os.close(handle)
        try:
            shutil.copy2(source, temporary)
            os.replace(temporary, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    except OSError as error:
        raise DTCourseError(
            f"cannot copy {source} to {target}: {error.strerror or error}"
        ) from None


def _read_manifest(workspace: Path) -> tuple[dict[str, dict[str, str]], tuple[str, ...]]:
    path = workspace / MANIFEST_NAME
    empty: dict[str, dict[str, str]] = {"files": {}, "sidecars": {}}
    if not path.exists():
        return empty, ()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files, sidecars = data["files"], data.get("sidecars", {})
        if not (_is_hash_map(files) and _is_hash_map(sidecars)):
            raise ValueError("unexpected content")
    except (OSError, ValueError, KeyError, TypeError):
        note = (
            f"note: {path} was unreadable; every file that differs from the release is "
            "treated as edited and kept"
        )
        return empty, (note,)
    return {"files": dict(files), "sidecars": dict(sidecars)}, ()


def _is_hash_map(value: object) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _write_manifest(
    workspace: Path, release: Path, files: Mapping[str, str], sidecars: Mapping[str, str]
) -> None:
    data = {
        "format": MANIFEST_FORMAT,
        "release": str(release),
        "files": dict(sorted(files.items())),
        "sidecars": dict(sorted(sidecars.items())),
    }
    path = workspace / MANIFEST_NAME
    try:
        handle, temporary = tempfile.mkstemp(dir=workspace, prefix=f"{MANIFEST_NAME}.")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=1)
            stream.write("\n")
        os.replace(temporary, path)
    except OSError as error:
        raise DTCourseError(f"cannot write {path}: {error.strerror or error}") from None
