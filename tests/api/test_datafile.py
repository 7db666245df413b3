"""fastnn.datafile: the CLI's CSV labels."""

import numpy as np

from fastnn.datafile import read_csv


def _csv(tmp_path, labels):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i + 1},{v}\n" for i, v in enumerate(labels)))
    return path


def test_integer_labels_are_int64(tmp_path):
    X, y = read_csv(_csv(tmp_path, ["0", "2", "1", "2.0"]))
    assert y.dtype == np.int64 and y.tolist() == [0, 2, 1, 2]
    assert X.shape == (4, 2)


def test_huge_integral_labels_stay_float(tmp_path):
    # 1e20 is integral but no int64 holds it: it used to wrap to int64's minimum
    _, y = read_csv(_csv(tmp_path, ["1e20", "0", "-3e30"]))
    assert y.dtype == np.float64 and y.tolist() == [1e20, 0.0, -3e30]
    _, y = read_csv(_csv(tmp_path, [str(2 ** 53), "1"]))
    assert y.dtype == np.int64 and y[0] == 2 ** 53


def test_fractional_and_text_labels(tmp_path):
    _, y = read_csv(_csv(tmp_path, ["0.5", "1"]))
    assert y.dtype == np.float64
    _, y = read_csv(_csv(tmp_path, ["cat", " dog"]))
    assert y.tolist() == ["cat", "dog"]
