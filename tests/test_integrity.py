"""The audit by hand, on records written in a scratch folder: what counts as damage, what moves, what stays."""

import json
import os
from pathlib import Path

import pytest

from prunestudy.io import integrity
from prunestudy.io.artifacts import ArtifactError, read_record, write_record
from prunestudy.io.records import outputs_beside

IDENT = {"experiment": "e", "arm": "scratch-E", "seed": 1, "slot": "0.5"}


def _run(folder: Path, ident=IDENT) -> Path:
    """A finished run: a model.pt and the metrics.json that vouches for it."""
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"weights" * 100)
    record = folder / "metrics.json"
    write_record(record, {"identity": ident, **outputs_beside(record), "test_error": 0.1})
    return record


def test_an_intact_run_passes_and_its_files_are_trusted_by_size_and_time(tmp_path):
    record = _run(tmp_path / "r")
    assert integrity.audit([integrity.Voucher(record, IDENT)], tmp_path, repair=True) == []
    assert not (tmp_path / integrity.CACHE).exists()  # nothing needed hashing: the record's stat matched


def test_an_edited_record_is_refused_by_its_digest(tmp_path):
    record = _run(tmp_path / "r")
    edited = {**json.loads(record.read_text()), "test_error": 0.0}
    record.write_text(json.dumps(edited))
    with pytest.raises(ArtifactError, match="matches its digest"):
        read_record(record)
    (d,) = integrity.audit([integrity.Voucher(record, IDENT)], tmp_path, repair=True)
    assert d.path == record and not record.exists()
    assert list((tmp_path / integrity.QUARANTINE).rglob("metrics.json"))


def test_a_record_of_another_run_is_damage(tmp_path):
    record = _run(tmp_path / "r", {**IDENT, "seed": 2})
    (d,) = integrity.audit([integrity.Voucher(record, IDENT)], tmp_path, repair=False)
    assert "it is the record of" in d.reason and record.exists()  # no repair: reported only


def test_a_changed_file_is_found_by_its_hash_even_with_its_size_and_time_kept(tmp_path):
    record = _run(tmp_path / "r")
    model = tmp_path / "r/model.pt"
    st = model.stat()
    model.write_bytes(b"wEights" * 100)  # same size, one byte flipped
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    damage = integrity.audit([integrity.Voucher(record, IDENT)], tmp_path, repair=True)
    assert [d.path.name for d in damage] == ["model.pt", "metrics.json"]
    assert not model.exists() and not record.exists()
    assert json.loads((tmp_path / integrity.CACHE).read_text())  # the hash is cached for the next audit


def test_a_missing_record_is_for_snakemake_to_rebuild_not_damage(tmp_path):
    assert integrity.audit([integrity.Voucher(tmp_path / "r/metrics.json", IDENT)], tmp_path, repair=True) == []


def test_temporaries_of_killed_writes_go_unless_another_run_holds_the_folder(tmp_path):
    stray = tmp_path / "r/.model.pt.abc.tmp"
    stray.parent.mkdir()
    stray.write_bytes(b"half")
    integrity.audit([], tmp_path, repair=True, locked=True)
    assert stray.exists()
    integrity.audit([], tmp_path, repair=False)
    assert stray.exists()
    integrity.audit([], tmp_path, repair=True)
    assert not stray.exists()


@pytest.mark.parametrize(
    ("argv", "audits", "repairs"),
    [
        (["snakemake", "--cores", "2"], True, True),
        (["snakemake", "-n"], True, False),
        (["snakemake", "-np"], True, False),
        (["snakemake", "--dry-run", "--configfile", "c.yaml"], True, False),
        (["snakemake", "--report", "r.html"], True, False),
        (["snakemake", "--lint"], False, False),
        (["snakemake", "--unlock"], False, False),
        (["snakemake", "-j4", "--configfile", "-n.yaml"], True, True),
    ],
)
def test_only_a_run_that_executes_jobs_moves_files(argv, audits, repairs):
    assert integrity.audits(argv) == audits and integrity.repairs(argv) == repairs


def test_a_job_refuses_a_large_network_trained_otherwise(tmp_path):
    """The plainly trained network where the Slimming-trained one (same spec id, same seed) belongs."""
    from prunestudy.jobs.common import check_base as _check_base

    plain = {"experiment": "resnet8-abc", "arm": "base", "seed": 1, "slot": None}
    record = _run(tmp_path / "plain", plain)
    wanted = {**plain, "experiment": "resnet8-abc-slimming-1234"}
    with pytest.raises(ArtifactError, match="expected the run"):
        _check_base(str(record.with_name("model.pt")), None, {}, plain, None, wanted)
