"""Atomic writes, safe checkpoint loading and provenance.

Everything a job writes goes through a temporary file in the same folder and ``os.replace``, so a
killed job leaves either the old file or the new one, never half of one. Checkpoints are
``torch.save`` of tensors and plain data and are read with ``weights_only=True``: a file crafted to
run code when unpickled is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import pandas as pd

REDO = (
    "run snakemake again: before planning it checks every artefact, moves a damaged one into the study's "
    ".quarantine/ folder and rebuilds it and everything made from it"
)


class ArtifactError(RuntimeError):
    """An input file that is damaged or is not the artefact the job expects; the message names the file."""


class UnsafeCheckpointError(ArtifactError):
    """A checkpoint that holds more than tensors and plain data."""


def expect(path: str | os.PathLike, what: str, expected: Any, found: Any) -> None:
    """Stop the job unless ``found == expected``, naming the file, both values and how to redo it."""
    if found != expected:
        raise ArtifactError(f"{path}: expected {what} {expected!r}, found {found!r}; {REDO}")


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only once the block completes, flushed to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path) as f:
        f.write(text.encode())


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON at ``path``; an empty, truncated or invalid file is an :class:`ArtifactError` naming it."""
    text = Path(path).read_text()
    if not text.strip():
        raise ArtifactError(f"{path}: the file is empty; {REDO}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: not valid JSON ({err}); {REDO}") from err


DIGEST = "digest"  # the key under which a record carries the hash of its own content


def seal(record: dict) -> dict:
    """``record`` with :data:`DIGEST` set to the hash of everything else in it, so that a reader can tell an
    edited or damaged record from the one its job wrote."""
    body = {k: v for k, v in record.items() if k != DIGEST}
    return {**body, DIGEST: config_hash(body)}


def write_record(path: str | os.PathLike, record: dict) -> None:
    """Write a JSON record sealed with its own digest (atomically)."""
    write_json(path, seal(record))


def read_record(path: str | os.PathLike) -> dict:
    """A sealed JSON record, refused (naming the file) when its content no longer matches its digest."""
    record = read_json(path)
    if not isinstance(record, dict) or DIGEST not in record:
        raise ArtifactError(f"{path}: not a sealed prunestudy record (no {DIGEST}); {REDO}")
    expect(path, "a record whose content matches its digest", record[DIGEST], seal(record)[DIGEST])
    return record


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, streamed (the first 16 hex digits)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def config_hash(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:12]


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Save a dict of tensors, plain numbers, strings, lists and dicts."""
    import torch

    with atomic_file(path) as f:  # streamed: no in-memory copy of a large checkpoint
        torch.save(payload, f)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """A checkpoint's payload. Empty, truncated or foreign files are an :class:`ArtifactError` naming the file."""
    import pickle

    import torch

    if Path(path).stat().st_size == 0:
        raise ArtifactError(f"{path}: the checkpoint is empty; {REDO}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain data ({err})"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ArtifactError(f"{path}: not a readable checkpoint, probably truncated ({first}); {REDO}") from err
    if not isinstance(payload, dict):
        raise ArtifactError(f"{path}: holds a {type(payload).__name__}, not a prunestudy checkpoint; {REDO}")
    return payload


def load_resume(path: str | os.PathLike, key: str, map_location: Any = "cpu") -> dict | None:
    """Resume state at ``path`` if it was written for the same job (``key``), else None.

    A job killed and then rerun after a config change must start afresh rather than continue work
    that was done for other settings.
    """
    import logging

    if not Path(path).exists():
        return None
    state = load_checkpoint(path, map_location)
    if state.get("resume_key", "") != key:
        logging.getLogger("prunestudy").warning("ignoring %s: it was written for a different config", path)
        return None
    return state


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Code and package versions for provenance; the git commit when run from a checkout.

    torchvision's version comes from its metadata: importing it loads ``torch._dynamo`` (about 3 s).
    """
    from importlib.metadata import version

    import numpy
    import torch

    from prunestudy import __version__

    out = {
        "prunestudy": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "numpy": numpy.__version__,
    }
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            out["git_commit"] = commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def check_steps(df: pd.DataFrame, source: object) -> None:
    """A trajectory table is steps 1..n, each once: a gap or a repeat means a damaged or spliced file."""
    steps = df["step"].tolist()
    if steps != list(range(1, len(steps) + 1)):
        bad = next((i + 1 for i, s in enumerate(steps) if s != i + 1), len(steps) + 1)
        raise ArtifactError(
            f"{source}: trajectory steps are not 1..{len(steps)} (step {bad} is missing or repeated); {REDO}"
        )
