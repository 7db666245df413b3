"""MLP.save / fastnn.load: versioned .npz files, bit-for-bit round trips, clear refusals."""

import io
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn import _format as fio


def _trained(rng, dtype=np.float32, optimizer="adam"):
    X = rng.normal(size=(60, 5))
    y = rng.integers(0, 3, 60)
    model = fastnn.MLP.from_sizes([5, 7, 4, 3], hidden="tanh", dtype=dtype, seed=0)
    model.fit(X, y, epochs=3, lr=0.01, optimizer=optimizer, seed=0, progress=False)
    return model, X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_predicts_bit_for_bit(backend, rng, tmp_path, dtype):
    model, X, _ = _trained(rng, dtype)
    path = tmp_path / "model.npz"
    model.save(path)
    again = fastnn.load(path)
    assert again.sizes == model.sizes and again.dtype == model.dtype
    assert [l.activation for l in again.layers] == [l.activation for l in model.layers]
    assert again.loss_name == model.loss_name
    np.testing.assert_array_equal(again.store.theta, model.store.theta)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(again.layers[1].W, model.layers[1].W)  # layers stay bound


def test_optimizer_state_lets_training_resume_exactly(rng, tmp_path):
    model, X, y = _trained(rng, np.float64, "adam")
    model.save(tmp_path / "m.npz")
    again = fastnn.load(tmp_path / "m.npz")
    assert again.store.step == model.store.step > 0
    for m in (model, again):
        m.fit(X, y, epochs=2, lr=0.01, optimizer="adam", seed=1, progress=False)
    np.testing.assert_array_equal(again.store.theta, model.store.theta)
    model.save(tmp_path / "bare.npz", optimizer_state=False)
    assert fastnn.load(tmp_path / "bare.npz").store.opt_code is None


def test_suffix_is_kept_and_extra_arrays_round_trip(rng, tmp_path):
    model, _, _ = _trained(rng)
    path = tmp_path / "model.fastnn"
    model.save(path, extra={"classes": np.array(["cat", "dog", "eel"]), "scale": [1.5, 2.0]})
    assert path.exists() and not (tmp_path / "model.fastnn.npz").exists()
    again, extra = fastnn.load(path, extra=True)
    assert extra["classes"].tolist() == ["cat", "dog", "eel"]
    assert extra["scale"].tolist() == [1.5, 2.0]
    with pytest.raises(ValueError, match="numbers or strings"):
        model.save(tmp_path / "x.npz", extra={"obj": np.array([{}], dtype=object)})


def test_file_holds_plain_arrays_only(rng, tmp_path):
    model, _, _ = _trained(rng)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert {"format", "version", "theta", "digest"} <= set(data.files)
        assert all(data[k].dtype != object for k in data.files)
        assert int(data["version"]) == fio.VERSION


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        fastnn.load(tmp_path / "absent.npz")


def _rewrite(src, dst, change):
    """Copy an .npz archive, passing each array through ``change(name, array)``."""
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays = {k: v for k, v in ((k, change(k, v)) for k, v in arrays.items()) if v is not None}
    np.savez(dst, **arrays)


def _flip_weight(name, a):
    if name == "theta":
        a = a.copy()
        a[3] += 1
    return a


@pytest.mark.parametrize("damage,message", [
    (lambda src, dst: dst.write_bytes(src.read_bytes()[:len(src.read_bytes()) // 2]),
     "not an .npz archive"),
    (lambda src, dst: dst.write_bytes(b"hello, world\n"), "not an .npz archive"),
    (lambda src, dst: _rewrite(src, dst, _flip_weight), "digest"),
    (lambda src, dst: _rewrite(src, dst, lambda k, a: None if k == "sizes" else a),
     "missing fields"),
    (lambda src, dst: _rewrite(src, dst, lambda k, a: None if k == "format" else a),
     "format tag"),
    (lambda src, dst: np.savez(dst, X=np.zeros(3), y=np.ones(3)), "format tag"),
    (lambda src, dst: np.savez(dst, format=np.array([{"a": 1}], dtype=object)), "pickled"),
    (lambda src, dst: np.save(open(dst, "wb"), np.zeros(3)), "not an .npz archive"),
])
def test_damaged_or_foreign_files_are_refused(rng, tmp_path, damage, message):
    model, _, _ = _trained(rng)
    src, dst = tmp_path / "good.npz", tmp_path / "bad.npz"
    model.save(src)
    damage(src, dst)
    with pytest.raises(fastnn.ModelFileError, match=message):
        fastnn.load(dst)


def test_corrupted_bytes_inside_the_archive_are_refused(rng, tmp_path):
    model, _, _ = _trained(rng, np.float64)
    model.save(tmp_path / "m.npz")
    raw = bytearray((tmp_path / "m.npz").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        info = z.getinfo("theta.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    raw[start] ^= 0xFF  # one flipped bit pattern inside the stored weights
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    with pytest.raises(fastnn.ModelFileError, match="fastnn model file"):
        fastnn.load(tmp_path / "bad.npz")


def _resigned(src, dst, change):
    """Like _rewrite, but recompute the digest, as a careful forger (or a bug) would."""
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays = {k: change(k, v) for k, v in arrays.items()}
    arrays["digest"] = np.array(fio._digest(arrays))
    np.savez(dst, **arrays)


@pytest.mark.parametrize("change,message", [
    (lambda k, a: np.array(fio.VERSION + 1) if k == "version" else a, "newer"),
    (lambda k, a: a[:-1] if k == "theta" else a, "does not fit the architecture"),
    (lambda k, a: np.full_like(a, np.nan) if k == "theta" else a, "NaN"),
    (lambda k, a: np.array(["tanh", "gelu", "softmax"]) if k == "activations" else a,
     "unknown activations"),
    (lambda k, a: np.array("mse") if k == "loss" else a, "does not fit the output"),
    (lambda k, a: np.array("int8") if k == "dtype" else a, "dtype"),
    # Adam's state vectors emptied: the compiled update would read past them
    (lambda k, a: a[:0] if k in ("opt_s1", "opt_s2") else a, "keeps 2 state vectors"),
    (lambda k, a: np.zeros(0, a.dtype) if k == "opt_s2" else a, "keeps 2 state vectors"),
    (lambda k, a: np.array(1) if k == "opt_code" else a, "keeps 1 state vectors"),
    (lambda k, a: np.full_like(a, np.inf) if k == "opt_s2" else a, "state contains NaN"),
])
def test_consistent_but_invalid_contents_are_refused(rng, tmp_path, change, message):
    model, _, _ = _trained(rng)
    model.save(tmp_path / "m.npz")
    _resigned(tmp_path / "m.npz", tmp_path / "bad.npz", change)
    with pytest.raises(fastnn.ModelFileError, match=message):
        fastnn.load(tmp_path / "bad.npz")


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(fastnn.ModelFileError, match="directory"):
        fastnn.load(tmp_path)
    assert issubclass(fastnn.ModelFileError, ValueError)


def test_a_version_1_file_written_by_plain_savez_still_loads(rng, tmp_path):
    """fastnn 0.2 wrote the arrays with ``np.savez`` straight onto the file: no signature."""
    model, X, _ = _trained(rng)
    store = model.store
    arrays = {"format": np.array(fio.FORMAT), "version": np.array(1, np.int64),
              "sizes": np.array(model.sizes, np.int64),
              "activations": np.array([l.activation for l in model.layers]),
              "loss": np.array(model.loss_name), "dtype": np.array(model.dtype.name),
              "theta": store.theta, "opt_code": np.array(store.opt_code, np.int64),
              "opt_t": np.array(store.step, np.int64), "opt_s1": store.s1, "opt_s2": store.s2,
              "extra/classes": np.array([0, 1, 2])}
    arrays["digest"] = np.array(fio._digest(arrays))
    np.savez(tmp_path / "old.npz", **arrays)
    again, extra = fastnn.load(tmp_path / "old.npz", extra=True)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert again.store.step == store.step and extra["classes"].tolist() == [0, 1, 2]


def test_a_pickle_of_fastnn_0_1_still_loads(rng):
    """0.1.0 pickled the model's flat ``_theta`` and ``_opt_*`` fields; they still unpickle."""
    model, X, _ = _trained(rng)
    store = model.store
    old = {"layers": [(l.in_features, l.out_features, l.activation) for l in model.layers],
           "_loss": model.spec.loss, "dtype": model.dtype, "_theta": store.theta.copy(),
           "_opt_code": store.opt_code, "_opt_t": store.step, "_s1": store.s1.copy(),
           "_s2": store.s2.copy(), "_shapes": model.spec.shapes.copy()}
    got = fastnn.MLP.__new__(fastnn.MLP)
    got.__setstate__(old)
    np.testing.assert_array_equal(got.predict_proba(X), model.predict_proba(X))
    assert (got.store.opt_code, got.store.step) == (store.opt_code, store.step)
    np.testing.assert_array_equal(got.store.s2, store.s2)
