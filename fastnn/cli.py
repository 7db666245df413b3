"""The ``fastnn`` command: ``train`` an MLP, ``predict`` with a saved one, ``info`` on this install.

Every failure (a bad file, a bad option, an unavailable backend) ends with one line on stderr
and a non-zero exit status, never a traceback (set FASTNN_DEBUG=1 to see one).
"""

import argparse
import importlib
import importlib.util
import os
import sys
import time

import numpy as np

from ._version import __version__, install_hint

# Subcommands that other modules contribute when present: module.register(subparsers) adds
# the parser, module.run(args) runs it.
_PLUGINS = ("bench",)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _hidden(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes widths like 128,64, got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden takes positive widths, got {text!r}")
    return sizes


def _seed(text):
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return seed


def _check_save_path(path):
    """Refuse an output path that cannot be written, before training rather than after."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"--save: {path!r} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise ValueError(f"--save: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--save: the folder {folder!r} is not writable")


def _parser():
    p = _Parser(prog="fastnn", description="Fast multilayer perceptrons.")
    p.add_argument("--version", action="version", version=f"fastnn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    t = sub.add_parser("train", help="train an MLP (digits by default) and report accuracy")
    t.add_argument("--data", help="training data: .npz with X and y, or .csv with the label in "
                                  "the last column (default: scikit-learn's digits)")
    t.add_argument("--task", choices=("auto", "classify", "regress"), default="auto",
                   help="auto: classify integer or string labels, regress other numbers")
    t.add_argument("--test-fraction", type=float, default=0.25,
                   help="share of --data held out for testing")
    t.add_argument("--scale", action="store_true",
                   help="standardise the features (the scaling is saved with the model)")
    t.add_argument("--hidden", type=_hidden, default=[128], help="hidden widths, e.g. 128,64")
    t.add_argument("--activation", default="relu", help="hidden activation")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=0.1)
    t.add_argument("--optimizer", default="sgd", help="sgd, momentum, nesterov or adam")
    t.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the weights")
    t.add_argument("--schedule", default="constant", help="constant, invscaling or adaptive")
    t.add_argument("--early-stopping", action="store_true",
                   help="hold out --validation-fraction and keep the best epoch's weights")
    t.add_argument("--validation-fraction", type=float, default=0.1)
    t.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    t.add_argument("--backend", default=None, help="numpy, numba, cython or cuda")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--save", metavar="FILE", help="write the trained model to FILE (.npz)")
    t.add_argument("--plot", metavar="PNG", help="draw the loss curves (needs matplotlib)")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    pr = sub.add_parser("predict", help="predict with a saved model")
    pr.add_argument("--model", required=True, help="a model file written by train --save")
    pr.add_argument("--data", required=True,
                    help=".npz with X (and optionally y) or .csv (optionally with labels)")
    pr.add_argument("--output", help="write the predictions here (one per line) instead of "
                                     "to stdout")
    pr.add_argument("--backend", default=None)
    sub.add_parser("info", help="backends, BLAS, threads and build options")
    plugins = {}
    for name in _PLUGINS:
        if importlib.util.find_spec(f"fastnn.{name}") is not None:
            mod = importlib.import_module(f"fastnn.{name}")
            if hasattr(mod, "register") and hasattr(mod, "run"):
                mod.register(sub)
                plugins[name] = mod
    return p, plugins


# data ---------------------------------------------------------------------------------------
def _task(y, choice):
    if choice != "auto":
        return choice
    return "regress" if y.dtype.kind == "f" else "classify"


def _load_training_data(args):
    """(X_train, X_test, y_train, y_test, classes, task, name) for ``train``."""
    from .data import validation_split

    if args.data is None:
        from .data import load_digits_split

        X_train, X_test, y_train, y_test = load_digits_split(seed=args.seed)
        return X_train, X_test, y_train, y_test, np.arange(10), "classify", "digits"
    from .datafile import read_data

    X, y = read_data(args.data)
    if y is None:
        raise ValueError(f"{args.data}: training data needs labels (y in the .npz)")
    X, y = np.asarray(X), np.asarray(y)
    if y.ndim != 1 or X.ndim != 2 or len(y) != len(X):
        raise ValueError(f"{args.data}: X must be 2-D and y 1-D with one label per row of X, "
                         f"got X {X.shape} and y {y.shape}")
    if not 0 < args.test_fraction < 1:
        raise ValueError(f"--test-fraction must lie in (0, 1), got {args.test_fraction}")
    task = _task(y, args.task)
    classes = None
    if task == "classify":
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise ValueError("--task classify needs integer or string labels")
        classes, y = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{args.data}: classification needs at least 2 classes")
    elif y.dtype.kind not in "biuf":
        raise ValueError("--task regress needs numeric targets")
    rng = np.random.default_rng(args.seed)
    train, test = validation_split(len(y), args.test_fraction, rng,
                                   y if task == "classify" else None)
    name = os.path.basename(args.data)
    return X[train], X[test], y[train], y[test], classes, task, name


def _scaling(X):
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


# commands -----------------------------------------------------------------------------------
def _check_plot_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("--plot needs matplotlib: " + install_hint("plot")) from None


def _plot(history, path, val_label):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, history.epochs + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, history.loss, label="training loss")
    if history.val_loss:
        ax.plot(epochs, history.val_loss, label=f"{val_label} loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _train(args):
    import fastnn

    if args.backend:
        fastnn.set_backend(args.backend)
    if args.plot:
        _check_plot_available()
    if args.save:
        _check_save_path(args.save)
    X_train, X_test, y_train, y_test, classes, task, name = _load_training_data(args)
    extra = {"task": np.array(task)}
    if classes is not None:
        extra["classes"] = classes
    if args.scale:
        mean, scale = _scaling(np.asarray(X_train, np.float64))
        X_train, X_test = (X_train - mean) / scale, (X_test - mean) / scale
        extra.update(x_mean=mean, x_scale=scale)
    if task == "classify":
        sizes, output = [X_train.shape[1], *args.hidden, len(classes)], "softmax"
    else:
        sizes, output = [X_train.shape[1], *args.hidden, 1], "identity"

    def build():
        return fastnn.MLP.from_sizes(sizes, hidden=args.activation, output=output,
                                     dtype=args.dtype, seed=args.seed)

    print(f"fastnn {fastnn.__version__}: training {'-'.join(map(str, sizes))} on {name} "
          f"({len(y_train)} train / {len(y_test)} test) with the {fastnn.get_backend()} backend")
    build().fit(X_train[:2], y_train[:2], epochs=1, batch_size=args.batch_size, lr=1e-9,
                optimizer=args.optimizer, progress=False)  # compile (or load cached code)
    model = build()
    val_label = "validation"
    validation_data = None
    if args.plot and not args.early_stopping:
        validation_data, val_label = (X_test, y_test), "test"
    start = time.perf_counter()
    history = model.fit(
        X_train, y_train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, seed=args.seed, progress=not args.no_progress, l2=args.l2,
        schedule=args.schedule, early_stopping=args.early_stopping,
        validation_fraction=args.validation_fraction, validation_data=validation_data,
        metrics=(),
    )
    elapsed = time.perf_counter() - start
    steps = history.epochs * len(y_train)
    print(f"final training loss {history.loss[-1]:.4f}")
    if history.stop_reason:
        print(f"stopped after {history.epochs} epochs ({history.stop_reason.replace('_', ' ')}"
              f"; best epoch {history.best_epoch})")
    if task == "classify":
        print(f"test accuracy {model.score(X_test, y_test):.4f}")
    else:
        print(f"test R² {model.score(X_test, y_test):.4f}")
    print(f"time {elapsed:.3f} s: {1e3 * elapsed / history.epochs:.2f} ms per epoch, "
          f"{steps / elapsed:,.0f} samples/s")
    if args.save:
        model.save(args.save, extra=extra)
        print(f"saved the model to {args.save}")
    if args.plot:
        _plot(history, args.plot, val_label)
        print(f"drew the loss curves in {args.plot}")


def _predict(args):
    import fastnn
    from .datafile import read_data

    if args.backend:
        fastnn.set_backend(args.backend)
    model, extra = fastnn.load(args.model, extra=True)
    X, y = read_data(args.data, n_features=model.sizes[0])
    if "x_mean" in extra:
        X = (np.asarray(X, np.float64) - extra["x_mean"]) / extra["x_scale"]
    out = model.predict(X)
    classes = extra.get("classes")
    task = str(extra.get("task", "classify" if model.loss_name != "mse" else "regress"))
    labels = classes[out] if classes is not None and task == "classify" else out
    lines = "\n".join(str(v) for v in np.asarray(labels).tolist()) + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(lines)
    else:
        sys.stdout.write(lines)
    if y is not None:
        y = np.asarray(y)
        if task == "classify":
            print(f"accuracy {np.mean(labels.astype(str) == y.astype(str)):.4f} on {len(y)} "
                  "samples", file=sys.stderr)
        else:
            y = y.astype(np.float64).reshape(np.shape(out))
            st = ((y - y.mean()) ** 2).sum()
            r2 = 1 - ((y - out) ** 2).sum() / st if st > 0 else 0.0
            print(f"R² {r2:.4f} on {len(y)} samples", file=sys.stderr)


def _info():
    import fastnn

    show = getattr(fastnn, "show_config", None)
    if show is not None:
        show()
        return
    print(f"fastnn {fastnn.__version__}")
    print(f"backends available: {', '.join(fastnn.available_backends())}")
    print(f"backend in use: {fastnn.get_backend()}")


def main(argv=None):
    """Entry point of the ``fastnn`` console script; returns the exit status."""
    parser, plugins = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            _train(args)
        elif args.command == "predict":
            _predict(args)
        elif args.command in plugins:
            return plugins[args.command].run(args) or 0
        else:
            _info()
    except KeyboardInterrupt:
        print("fastnn: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, never a traceback
        if os.environ.get("FASTNN_DEBUG"):
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        known = (ValueError, RuntimeError, ImportError, OSError, FloatingPointError)
        prefix = "" if isinstance(exc, known) else f"unexpected {type(exc).__name__}: "
        print(f"fastnn: error: {prefix}{msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
