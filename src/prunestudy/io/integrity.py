"""Before every run: check each artefact against the record that vouches for it; move damaged ones aside.

Snakemake decides what to run from which files exist and how old they are. It cannot see a file whose
bytes changed (an edited record, a truncated or swapped checkpoint, two files swapped with ``mv``), and
once a study's tables exist it never looks back at an intermediate file that went missing. So the
Snakefile calls :func:`audit` before it plans: every record (a ``metrics.json``, a pruning chunk's or a
trajectory's record) must be intact (its digest), be the run its path expects (its identity) and vouch
for files whose bytes still hash to what it recorded. A record that fails, and the files it vouches for
that fail, are moved into ``<study>/.quarantine/<time>/`` (kept, not deleted): their job's outputs are
then missing, and because the workflow asks for every artefact, Snakemake reruns that job and, by the
files' new times, everything made from it. Deterministic jobs make the end identical to an undamaged run.

Hashing is cached by (size, modification time) in ``<study>/.audit.json``, and a file whose size and
time are still those its record captured when it was written is trusted without hashing, so an audit of
an unchanged study reads no checkpoint. Leftover temporary files of killed writes are removed unless
another Snakemake run holds the working directory. Torch-free: it runs in every Snakemake start.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunestudy.io.artifacts import ArtifactError, file_digest, read_record, write_json

CACHE = ".audit.json"
QUARANTINE = ".quarantine"
STATS = "output_stats"  # a record's (size, mtime_ns) of each output when it was written: the audit's fast path


@dataclass(frozen=True)
class Voucher:
    """A record the workflow expects at ``path``, for the run ``identity`` (None: any identity)."""

    path: Path
    identity: Mapping[str, Any] | None


@dataclass(frozen=True)
class Damage:
    """A file that failed its check, why, and the record whose job must rerun to rebuild it."""

    path: Path
    reason: str
    record: Path


def output_stats(folder: str | os.PathLike, names: Iterable[str]) -> dict[str, list[int]]:
    """(size, mtime_ns) of each named file under ``folder``, as a record stores them when its job writes it."""
    out = {}
    for name in names:
        st = (Path(folder) / name).stat()
        out[name] = [st.st_size, st.st_mtime_ns]
    return out


class _Hashes:
    """File hashes, each computed at most once per (path, size, mtime) across runs."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.known: dict[str, list] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.changed = False

    def matches(self, file: Path, expected: str, recorded_stat: list[int] | None) -> bool:
        st = file.stat()
        stat = [st.st_size, st.st_mtime_ns]
        if recorded_stat == stat:
            return True
        cached = self.known.get(str(file))
        if cached and cached[:2] == stat:
            return cached[2] == expected
        digest = file_digest(file)
        self.known[str(file)] = [*stat, digest]
        self.changed = True
        return digest == expected

    def save(self) -> None:
        if self.changed:
            write_json(self.path, self.known)


def check(voucher: Voucher, hashes: _Hashes) -> list[Damage]:
    """What is wrong with one record and the files it vouches for (nothing for a record not yet written)."""
    if not voucher.path.exists():
        return []
    try:
        record = read_record(voucher.path)
    except ArtifactError as err:
        return [Damage(voucher.path, _reason(err, voucher.path), voucher.path)]
    if voucher.identity is not None and record.get("identity") != dict(voucher.identity):
        found = record.get("identity")
        return [Damage(voucher.path, f"it is the record of {found}, not of {dict(voucher.identity)}", voucher.path)]
    folder, stats = voucher.path.parent, record.get(STATS, {})
    damage = []
    for name, expected in record.get("outputs", {}).items():
        file = folder / name
        if not file.exists():
            damage.append(Damage(file, "missing", voucher.path))
        elif not hashes.matches(file, expected, stats.get(name)):
            damage.append(Damage(file, "its content is not what its record vouches for", voucher.path))
    if damage:  # the job that wrote them must rerun: its record goes too
        damage.append(Damage(voucher.path, "it vouches for a damaged file", voucher.path))
    return damage


def _reason(err: ArtifactError, path: Path) -> str:
    """An artefact error's message without the file's name in front and the repair advice behind."""
    return str(err).split("; ", 1)[0].removeprefix(f"{path}: ")


def stray_temporaries(root: Path) -> list[Path]:
    """The temporary files of writes that a killed job never finished (see :func:`atomic_file`)."""
    return sorted(p for p in root.rglob(".*.tmp") if p.is_file())


def audit(vouchers: Iterable[Voucher], root: str | os.PathLike, *, repair: bool, locked: bool = False) -> list[Damage]:
    """Check every record; with ``repair``, move what failed into the quarantine folder and remove the
    temporaries of killed writes (unless ``locked``: another run holds the working directory)."""
    root = Path(root)
    if not root.exists():
        return []
    hashes = _Hashes(root / CACHE)
    seen: dict[Path, Damage] = {}
    for voucher in vouchers:
        for d in check(voucher, hashes):
            seen.setdefault(d.path, d)
    hashes.save()
    damage = list(seen.values())
    if repair and damage:
        quarantine(damage, root)
    if repair and not locked:
        for tmp in stray_temporaries(root):
            tmp.unlink(missing_ok=True)
    return damage


def quarantine(damage: Iterable[Damage], root: Path) -> Path:
    """Move each damaged file (kept for inspection) under ``<root>/.quarantine/<time>/``, at its own path."""
    folder = root / QUARANTINE / time.strftime("%Y%m%d-%H%M%S")
    for d in damage:
        if d.path.exists():
            target = folder / d.path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(d.path), target)
    return folder


# Snakemake modes that execute nothing: the audit reports there, and repairs only before a real run
REPORT_ONLY = {"-n", "--dry-run", "--dryrun", "--just-print", "--report", "--summary", "-S", "--detailed-summary"}
NO_AUDIT = {"--lint", "--list", "-l", "--list-rules", "--list-target-rules", "--unlock", "--dag", "--rulegraph"}
NO_AUDIT |= {"--filegraph", "--cleanup-metadata", "--delete-all-output", "--delete-temp-output", "--archive"}


def _flags(argv: Iterable[str]) -> set[str]:
    """The options of a command line, combined short flags split (``-np`` is ``-n`` and ``-p``)."""
    out = set()
    for a in argv:
        if a.startswith("--"):
            out.add(a.split("=", 1)[0])
        elif a.startswith("-") and len(a) > 1 and a[1:].isalpha():
            out |= {f"-{c}" for c in a[1:]}
    return out


def audits(argv: Iterable[str]) -> bool:
    """Whether a Snakemake invocation looks at results at all (not a lint, a listing, an unlock, ...)."""
    return not _flags(argv) & NO_AUDIT


def repairs(argv: Iterable[str]) -> bool:
    """Whether it may move damaged files aside: only a run that executes jobs (not ``-n``, not a report)."""
    return not _flags(argv) & (REPORT_ONLY | NO_AUDIT)


def describe(damage: list[Damage], root: str | os.PathLike, repaired: bool) -> str:
    """What the audit found, one line per file, and what happens (or would happen) next."""
    lines = [f"prunestudy: {len(damage)} damaged artefact(s) under {root}:"]
    lines += [f"  {d.path}: {d.reason}" for d in damage]
    if repaired:
        lines.append(f"  moved to {Path(root) / QUARANTINE}/; this run rebuilds them and everything made from them")
    else:
        lines.append("  a run without -n moves them to the quarantine folder and rebuilds them")
    return "\n".join(lines)
