"""The ``fastnn`` command: train, predict, info, --version, and one-line errors."""

import os
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import fastnn
from fastnn.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _iris_like(rng, n=90):
    centers = np.array([[0, 0, 0], [4, 4, 0], [0, 4, 4]], float)
    y = rng.integers(0, 3, n)
    return centers[y] + rng.normal(size=(n, 3)), y


def _write_csv(path, X, labels, header=True):
    with open(path, "w") as f:
        if header:
            f.write(",".join(f"x{j}" for j in range(X.shape[1])) + ",label\n")
        for row, label in zip(X, labels):
            f.write(",".join(f"{v:.6f}" for v in row) + f",{label}\n")


def test_train_on_digits_by_default(capsys):
    pytest.importorskip("sklearn")
    code, out, err = _run(capsys, "train", "--epochs", "2", "--no-progress", "--seed", "1")
    assert code == 0, err
    assert "on digits (1347 train / 450 test)" in out
    acc = float(out.split("test accuracy ")[1].split()[0])
    assert 0.8 < acc <= 1
    assert "ms per epoch" in out


def test_progress_bar_shows_the_running_loss(capsys):
    pytest.importorskip("sklearn")
    code, _, err = _run(capsys, "train", "--epochs", "1")
    assert code == 0 and "loss=" in err


def test_train_csv_with_string_labels_save_and_predict(capsys, rng, tmp_path):
    X, y = _iris_like(rng)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    data, model = tmp_path / "flowers.csv", tmp_path / "flowers.npz"
    _write_csv(data, X, names)
    code, out, err = _run(capsys, "train", "--data", str(data), "--hidden", "16",
                          "--epochs", "30", "--lr", "0.05", "--scale", "--no-progress",
                          "--save", str(model))
    assert code == 0, err
    assert "3-16-3 on flowers.csv (" in out and float(out.split("test accuracy ")[1][:6]) > 0.9
    code, out, err = _run(capsys, "predict", "--model", str(model), "--data", str(data))
    assert code == 0, err
    pred = out.split()
    assert len(pred) == 90 and set(pred) <= set(names)
    assert np.mean(np.array(pred) == names) > 0.9
    assert "accuracy" in err
    # features only, no label column: predictions, no score
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    code, out, err = _run(capsys, "predict", "--model", str(model), "--data",
                          str(tmp_path / "x.csv"), "--output", str(tmp_path / "p.txt"))
    assert code == 0 and out == "" and "accuracy" not in err
    assert (tmp_path / "p.txt").read_text().split() == pred


def test_train_npz_regression_with_early_stopping(capsys, rng, tmp_path):
    X = rng.normal(size=(200, 4))
    y = X @ np.array([1.0, -1.0, 0.5, 2.0]) + 0.05 * rng.normal(size=200)
    np.savez(tmp_path / "reg.npz", X=X, y=y)
    code, out, err = _run(capsys, "train", "--data", str(tmp_path / "reg.npz"), "--epochs",
                          "200", "--lr", "0.01", "--early-stopping", "--no-progress",
                          "--optimizer", "adam", "--dtype", "float64")
    assert code == 0, err
    assert float(out.split("test R² ")[1].split()[0]) > 0.9


def test_plot_draws_the_curves(capsys, rng, tmp_path):
    pytest.importorskip("matplotlib")
    X, y = _iris_like(rng)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    png = tmp_path / "curves.png"
    code, out, err = _run(capsys, "train", "--data", str(tmp_path / "d.npz"), "--epochs", "3",
                          "--no-progress", "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = _run(capsys, "train", "--plot", "c.png", "--epochs", "1")
    assert code != 0 and 'pip install "fastnn-mlp[plot]"' in err and out == ""


def _bad_csv(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("1,2,a\n3,oops,b\n")
    return str(p)


def _ragged_csv(tmp_path):
    p = tmp_path / "ragged.csv"
    p.write_text("1,2,0\n3,1\n")
    return str(p)


def _text_model(tmp_path):
    p = tmp_path / "model.npz"
    p.write_text("not a model")
    return str(p)


def _garbage_npz(tmp_path):
    p = tmp_path / "garbage.npz"
    p.write_bytes(b"not a zip archive")
    return str(p)


def _object_npz(tmp_path):
    p = tmp_path / "objects.npz"
    np.savez(p, X=np.array([object(), object()], dtype=object), y=np.zeros(2))
    return str(p)


ERRORS = [
    (lambda t: ["train", "--data", _garbage_npz(t)], "not a zip archive of arrays"),
    (lambda t: ["train", "--data", _object_npz(t)], "which fastnn never loads"),
    (lambda t: ["train", "--seed", "-5"], "argument --seed: expected an integer >= 0"),
    (lambda t: ["train", "--save", str(t / "no" / "m.npz")], "--save: the folder"),
    (lambda t: ["train", "--save", str(t)], "is a folder; give a file name"),
    (lambda t: ["train", "--data", str(t / "missing.csv")], "no such data file"),
    (lambda t: ["train", "--data", _bad_csv(t)], "row 2, column 2: 'oops' is not a number"),
    (lambda t: ["train", "--data", _ragged_csv(t)], "row 2 has 2 columns"),
    (lambda t: ["train", "--data", str(t)], "no such data file"),
    (lambda t: ["train", "--backend", "tpu"], "unknown backend 'tpu'"),
    (lambda t: ["train", "--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    (lambda t: ["train", "--epochs", "0"], "epochs must be an integer >= 1"),
    (lambda t: ["train", "--hidden", "12,x"], "--hidden takes widths"),
    (lambda t: ["train", "--epochs", "ten"], "invalid int value"),
    (lambda t: ["train", "--frobnicate"], "unrecognized arguments"),
    (lambda t: ["predict", "--model", _text_model(t), "--data", _bad_csv(t)],
     "not a fastnn model file"),
    (lambda t: ["predict", "--model", str(t / "none.npz"), "--data", _bad_csv(t)],
     "no such model file"),
    (lambda t: [], "required"),
]


@pytest.mark.parametrize("argv,message", ERRORS, ids=[m for _, m in ERRORS])
def test_errors_are_one_line_with_a_nonzero_exit(capsys, tmp_path, argv, message):
    try:
        code = main(argv(tmp_path))
    except SystemExit as exc:  # argparse's own errors exit with status 2
        code = exc.code
    out, err = capsys.readouterr()
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "accuracy" not in out  # refused before any training (a bad --save path too)


def test_a_backend_that_is_not_available_is_one_line(capsys):
    import fastnn

    missing = [b for b in ("cython", "cuda") if b not in fastnn.available_backends()]
    if not missing:
        pytest.skip("every backend is available here")
    code, _, err = _run(capsys, "train", "--backend", missing[0])
    assert code != 0 and f"backend {missing[0]!r} is not available" in err
    assert len(err.strip().splitlines()) == 1


def test_module_entry_point_runs_info():
    res = subprocess.run([sys.executable, "-m", "fastnn", "info"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "fastnn" in res.stdout and "numpy" in res.stdout


def test_module_entry_point_errors_have_no_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "fastnn", "predict", "--model",
                          str(tmp_path / "x.npz"), "--data", str(tmp_path / "y.csv")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("fastnn: error: no such model file")


def _fastnn_command():
    """The ``fastnn`` console script installed for this interpreter, or None."""
    folders = os.pathsep.join([sysconfig.get_path("scripts"), os.path.dirname(sys.executable)])
    script = shutil.which("fastnn", path=folders)
    return [script] if script else None


@pytest.mark.parametrize("how", ["command", "module"])
def test_version_flag(how):
    argv = _fastnn_command() if how == "command" else [sys.executable, "-m", "fastnn"]
    if argv is None:
        pytest.skip("no fastnn console script beside this Python")
    res = subprocess.run(argv + ["--version"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"fastnn {fastnn.__version__}\n"
