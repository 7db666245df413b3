"""fastnn.sklearn against scikit-learn's own MLPs, at the same settings, on its bundled data.

For each dataset: a stratified 75/25 split, features (and the diabetes target) standardised on
the training part, then both libraries' estimators fitted with identical parameters for several
random states. Prints mean test accuracy (R² for diabetes), median fit time, the fit-time ratio,
the epochs each ran (both stop on ``tol``), and the time-per-epoch ratio. Each random state
draws its own split and initial weights, so the means average over both.

    python benchmarks/compare_sklearn.py [--seeds 10] [--batch-size auto] [--dtype float64]
                                         [--blas-threads 1]
"""

import argparse
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.preprocessing import StandardScaler

import fastnn
from fastnn.sklearn import MLPClassifier, MLPRegressor

DATASETS = {
    "digits": (datasets.load_digits, "classify"),
    "iris": (datasets.load_iris, "classify"),
    "breast_cancer": (datasets.load_breast_cancer, "classify"),
    "wine": (datasets.load_wine, "classify"),
    "diabetes": (datasets.load_diabetes, "regress"),
}

# scikit-learn's defaults, spelled out: both libraries get exactly these.
PARAMS = dict(hidden_layer_sizes=(100,), activation="relu", solver="adam", alpha=1e-4,
              batch_size="auto", learning_rate_init=1e-3, max_iter=200, tol=1e-4,
              n_iter_no_change=10, shuffle=True)


def _split(name, kind, seed):
    X, y = DATASETS[name][0](return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=y if kind == "classify" else None)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    if kind == "regress":
        ys = StandardScaler().fit(y_tr[:, None])
        y_tr, y_te = ys.transform(y_tr[:, None])[:, 0], ys.transform(y_te[:, None])[:, 0]
    return X_tr, X_te, y_tr, y_te


def _timed_fit(est, X, y):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return time.perf_counter() - start


def compare(name, seeds, dtype, params):
    kind = DATASETS[name][1]
    ours_cls, theirs_cls = ((MLPClassifier, SkClassifier) if kind == "classify"
                            else (MLPRegressor, SkRegressor))
    rows = {"sk": [], "fn": []}
    for seed in range(seeds):  # each seed: its own split and its own initial weights
        X_tr, X_te, y_tr, y_te = _split(name, kind, seed)
        if dtype == "float32":
            X_tr, X_te = X_tr.astype(np.float32), X_te.astype(np.float32)
        if seed == 0:  # compile (or load the cached machine code) before timing
            _timed_fit(ours_cls(**{**params, "max_iter": 2}, random_state=0), X_tr, y_tr)
        for key, cls in (("sk", theirs_cls), ("fn", ours_cls)):
            est = cls(**params, random_state=seed)
            t = _timed_fit(est, X_tr, y_tr)
            rows[key].append((est.score(X_te, y_te), t, est.n_iter_))
    out = {}
    for key, r in rows.items():
        r = np.array(r)
        out[key] = dict(score=r[:, 0].mean(), time=np.median(r[:, 1]), epochs=r[:, 2].mean(),
                        per_epoch=np.median(r[:, 1] / r[:, 2]))
    return kind, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10,
                   help="random states (train/test split and initial weights) per dataset")
    p.add_argument("--batch-size", default="auto",
                   help="batch_size for both (scikit-learn's default: auto = min(200, n))")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"),
                   help="dtype of the data both libraries get (float32: both keep it)")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="limit the threads of both libraries: scikit-learn's BLAS (threadpoolctl) "
                        "and fastnn's BLAS and OpenMP loops (fastnn.set_num_threads)")
    p.add_argument("--datasets", default=",".join(DATASETS))
    args = p.parse_args(argv)
    params = dict(PARAMS, batch_size=args.batch_size if args.batch_size == "auto"
                  else int(args.batch_size))
    limiter = None
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.blas_threads, user_api="blas")  # noqa: F841
        fastnn.set_num_threads(args.blas_threads)  # fastnn's own BLAS copy and OpenMP loops too
    import sklearn

    print(f"fastnn {fastnn.__version__} ({fastnn.get_backend()} backend) vs scikit-learn "
          f"{sklearn.__version__}; {args.seeds} random states; {args.dtype} data; "
          f"parameters {params}")
    head = (f"{'dataset':<14}{'metric':<9}{'sklearn':>8}{'fastnn':>8}{'diff':>7}"
            f"{'sk fit s':>10}{'fn fit s':>10}{'fit x':>7}{'sk ep':>7}{'fn ep':>7}"
            f"{'epoch x':>9}")
    print(head)
    print("-" * len(head))
    for name in args.datasets.split(","):
        kind, r = compare(name, args.seeds, args.dtype, params)
        sk, fn = r["sk"], r["fn"]
        metric = "accuracy" if kind == "classify" else "R2"
        scale = 100 if kind == "classify" else 1
        fmt = "{:>8.2f}" if kind == "classify" else "{:>8.3f}"
        print(f"{name:<14}{metric:<9}" + fmt.format(scale * sk["score"])
              + fmt.format(scale * fn["score"])
              + f"{scale * (fn['score'] - sk['score']):>+7.2f}"
              f"{sk['time']:>10.4f}{fn['time']:>10.4f}{sk['time'] / fn['time']:>7.1f}"
              f"{sk['epochs']:>7.0f}{fn['epochs']:>7.0f}"
              f"{sk['per_epoch'] / fn['per_epoch']:>9.1f}")
    print("accuracy in percent (diff in points); fit x = sklearn median fit time / fastnn's; "
          "epoch x = the same per epoch (both stop on tol, so epoch counts can differ)")


if __name__ == "__main__":
    main()
