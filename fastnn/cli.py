"""The ``fastnn`` command: ``train`` an MLP (digits by default) and ``info`` about this install."""

import argparse
import sys
import time


def _hidden(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes widths like 128,64, got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden takes positive widths, got {text!r}")
    return sizes


def _parser():
    p = argparse.ArgumentParser(prog="fastnn", description="Fast multilayer perceptrons.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an MLP on the digits data and report accuracy")
    t.add_argument("--hidden", type=_hidden, default=[128], help="hidden widths, e.g. 128,64")
    t.add_argument("--activation", default="relu", help="hidden activation")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=0.1)
    t.add_argument("--optimizer", default="sgd", help="sgd, momentum, nesterov or adam")
    t.add_argument("--backend", default=None, help="numpy, numba, cython or cuda")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sub.add_parser("info", help="backends, BLAS, threads and build options")
    return p


def _train(args):
    import fastnn
    from fastnn.data import load_digits_split

    if args.backend:
        fastnn.set_backend(args.backend)
    X_train, X_test, y_train, y_test = load_digits_split(seed=args.seed)
    sizes = [X_train.shape[1], *args.hidden, 10]
    model = fastnn.MLP.from_sizes(sizes, hidden=args.activation, seed=args.seed)
    print(f"fastnn {fastnn.__version__}: training {'-'.join(map(str, sizes))} on digits "
          f"({len(y_train)} train / {len(y_test)} test) with the {fastnn.get_backend()} backend")
    model.fit(X_train[:2], y_train[:2], epochs=1, batch_size=args.batch_size, lr=1e-9,
              progress=False)  # compile (or load cached code) before timing
    model = fastnn.MLP.from_sizes(sizes, hidden=args.activation, seed=args.seed)
    start = time.perf_counter()
    history = model.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, optimizer=args.optimizer, seed=args.seed,
                        progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    steps = args.epochs * len(y_train)
    print(f"final training loss {history.loss[-1]:.4f}")
    print(f"test accuracy {model.score(X_test, y_test):.4f}")
    print(f"time {elapsed:.3f} s: {1e3 * elapsed / args.epochs:.2f} ms per epoch, "
          f"{steps / elapsed:,.0f} samples/s")


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
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            _train(args)
        else:
            _info()
    except (ValueError, RuntimeError, ImportError, OSError) as exc:
        print(f"fastnn: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
