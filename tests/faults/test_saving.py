"""Saves that behave: through symlinks, umask permissions, no temporary files left behind, and
the optional HMAC-SHA256 signature."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import _format as fio
from fastnn import io as fio_api


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    m = fastnn.MLP.from_sizes([4, 6, 3], dtype=np.float64, seed=0)
    m.fit(X, y, epochs=2, lr=0.01, optimizer="adam", seed=0, progress=False)
    return m


def _temps(folder):
    return sorted(n for n in os.listdir(folder) if "fastnn-tmp-" in n)


def test_save_writes_through_a_symlink_to_its_target(model, tmp_path):
    (tmp_path / "real").mkdir()
    target, link = tmp_path / "real" / "m.npz", tmp_path / "link.npz"
    target.write_bytes(b"old contents")
    link.symlink_to(target)
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(fastnn.load(target).store.theta, model.store.theta)
    assert _temps(tmp_path) == [] and _temps(tmp_path / "real") == []
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "real" / "new.npz")
    model.save(dangling)
    assert dangling.is_symlink() and (tmp_path / "real" / "new.npz").is_file()


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002, 0o077])
def test_saved_file_gets_the_umask_permissions(model, tmp_path, umask):
    old = os.umask(umask)
    try:
        model.save(tmp_path / "m.npz")
        fio_api.save(model, tmp_path / "k.npz", key=b"secret")
    finally:
        os.umask(old)
    for name in ("m.npz", "k.npz"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~umask


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_later_save_removes_temporary_files_of_killed_saves(model, tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".m.npz.fastnn-tmp-{dead}-abc123"
    busy = tmp_path / f".m.npz.fastnn-tmp-{alive}-def456"      # a save still running
    other = tmp_path / f".other.npz.fastnn-tmp-{dead}-abc123"  # another file's
    for p in (stale, busy, other):
        p.write_bytes(b"partial")
    model.save(tmp_path / "m.npz")
    assert not stale.exists() and busy.exists() and other.exists()
    assert fastnn.load(tmp_path / "m.npz").sizes == [4, 6, 3]


def test_temporary_file_is_removed_on_every_error(model, tmp_path):
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def fail(exc):
        def fill(f):
            f.write(b"half a file")
            raise exc
        return fill

    for exc in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            fio.atomic_write(path, fail(exc))
        assert _temps(tmp_path) == [] and path.read_bytes() == before
    (tmp_path / "adir").mkdir()
    with pytest.raises(OSError):                        # the rename onto a directory fails
        model.save(tmp_path / "adir")
    assert _temps(tmp_path) == []
    with pytest.raises(ValueError, match="extra names"):
        model.save(path, extra={"a/b": [1]})
    assert _temps(tmp_path) == [] and path.read_bytes() == before


def test_temporary_file_name_is_recognisable(model, tmp_path, monkeypatch):
    seen = []
    real = np.savez

    def spy(f, **arrays):
        seen.extend(_temps(tmp_path))                   # while the temporary file exists
        return real(f, **arrays)

    monkeypatch.setattr(np, "savez", spy)
    model.save(tmp_path / "m.npz")
    assert len(seen) == 1 and seen[0].startswith(f".m.npz.fastnn-tmp-{os.getpid()}-")
    assert _temps(tmp_path) == []


def test_hmac_signature_round_trip(model, tmp_path):
    path = tmp_path / "signed.npz"
    fio_api.save(model, path, key=b"secret key")
    again = fio_api.load(path, key=b"secret key")
    np.testing.assert_array_equal(again.store.theta, model.store.theta)
    assert again.store.step == model.store.step
    again, extra = fio_api.load(path, key=bytearray(b"secret key"), extra=True)
    assert extra == {}
    # a signed file still loads without a key (the digest, a checksum, is still checked), and
    # its digest covers the signature as older readers compute it
    np.testing.assert_array_equal(fastnn.load(path).store.theta, model.store.theta)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    assert "signature" in arrays and str(arrays["digest"]) == fio._digest(arrays)


def test_wrong_key_or_missing_signature_is_refused(model, tmp_path):
    signed, plain = tmp_path / "signed.npz", tmp_path / "plain.npz"
    fio_api.save(model, signed, key=b"right")
    fio_api.save(model, plain)
    with pytest.raises(fastnn.ModelFileError, match="signature does not match"):
        fio_api.load(signed, key=b"wrong")
    with pytest.raises(fastnn.ModelFileError, match="no signature"):
        fio_api.load(plain, key=b"right")
    assert fio_api.load(plain).sizes == model.sizes      # no key: saved without one, loads


def _forge(src, dst, change):
    """Edit a signed file and recompute its digest, as anyone without the key can."""
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays = {k: v for k, v in ((k, change(k, v)) for k, v in arrays.items()) if v is not None}
    arrays["digest"] = np.array(fio._digest(arrays))
    np.savez(dst, **arrays)


@pytest.mark.parametrize("change,message", [
    (lambda k, a: a * 2 if k == "theta" else a, "signature does not match"),
    (lambda k, a: None if k == "signature" else a, "no signature"),
    (lambda k, a: np.array("0" * 64) if k == "signature" else a, "signature does not match"),
])
def test_a_forged_signed_file_passes_its_digest_but_not_its_signature(model, tmp_path, change,
                                                                      message):
    fio_api.save(model, tmp_path / "signed.npz", key=b"k")
    _forge(tmp_path / "signed.npz", tmp_path / "forged.npz", change)
    fastnn.load(tmp_path / "forged.npz")                 # the checksum alone is satisfied
    with pytest.raises(fastnn.ModelFileError, match=message):
        fio_api.load(tmp_path / "forged.npz", key=b"k")


def test_key_must_be_bytes(model, tmp_path):
    for key in ("text", b"", 3):
        with pytest.raises(TypeError, match="bytes"):
            fio_api.save(model, tmp_path / "m.npz", key=key)
    assert not (tmp_path / "m.npz").exists() and _temps(tmp_path) == []


def test_fortran_ordered_and_empty_extra_arrays_round_trip(model, tmp_path):
    extra = {"f": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "empty": np.zeros((0, 4)),
             "scalar": np.float32(2.5), "words": np.array([["a", "bc"], ["d", "e"]])}
    model.save(tmp_path / "m.npz", extra=extra)
    _, got = fastnn.load(tmp_path / "m.npz", extra=True)
    for k, v in extra.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].shape == np.shape(v)
