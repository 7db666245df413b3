"""One MLP train_step on the GPU: fastnn's cuda backend beside PyTorch (float32, TF32 off).

Usage::

    python benchmarks/gpu_bench.py              # needs an NVIDIA GPU, numba.cuda and torch
    python benchmarks/gpu_bench.py --simulate   # runs the same logic on a tiny case in numba's
                                                # CUDA simulator (no GPU; timings meaningless)

For each case (batch, layer sizes; relu hidden, softmax + cross-entropy, plain SGD) it prints the
time per step of fastnn (``train_epoch`` over one batch, which reads the loss back, and the
device-side variant, which does not), of PyTorch (zero_grad, forward, loss, backward, step,
``loss.item()``), their ratio, and the time of fastnn's forward GEMM for the widest layer as a
fraction of the same-size ``torch.matmul`` (cuBLAS). Without a GPU it says so and exits 0.
"""

import argparse
import os
import sys
import time

CASES = [(32, [64, 128, 10]), (128, [784, 256, 10]), (256, [784, 512, 512, 10]),
         (1024, [1024, 2048, 2048, 10])]
SIM_CASES = [(4, [5, 6, 3])]


def _parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--simulate", action="store_true",
                   help="run a tiny case in numba's CUDA simulator (checks the logic, not speed)")
    p.add_argument("--repeats", type=int, default=50, help="timed steps per case")
    p.add_argument("--tiles", action="store_true",
                   help="also time each GEMM form of the large case for several tiles "
                        "(BM, BN, BK, TM, TN) beside cuBLAS, checking each result")
    return p.parse_args()


def _timeit(fn, sync, repeats, warmup=3):
    """Mean seconds per call of ``fn`` after ``warmup`` calls, with the GPU drained around it."""
    for _ in range(warmup):
        fn()
    sync()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t) / repeats


def _fastnn_step(K, C, np, batch, sizes, rng):
    """Closures running one fastnn training step on device data: read-back and device-side."""
    from fastnn.kernels.layout import param_size, workspace_size

    shapes = np.array([(o, i) for i, o in zip(sizes[:-1], sizes[1:])], np.int64)
    acts = np.array([C.RELU] * (len(sizes) - 2) + [C.SOFTMAX], np.int64)
    theta = (0.05 * rng.standard_normal(param_size(shapes))).astype(np.float32)
    X = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    hyper = np.zeros(C.N_HYPER)
    hyper[C.H_LR] = 1e-3
    empty = K.device_zeros(0, np.float32)
    args = (K.to_device(X), K.to_device(Y), None, None, K.to_device(theta),
            K.device_zeros(theta.size, np.float32), shapes, acts, C.CROSS_ENTROPY, batch,
            C.OPT_SGD, hyper, empty, empty, 0,
            K.device_zeros(workspace_size(shapes, batch), np.float32))
    state = K.new_state()

    def step():
        return K.train_epoch(*args)

    def step_device():
        K.train_epoch_device(*args, state)

    return step, step_device


def _fastnn_gemm(K, np, M, N, Kd, rng):
    """A closure running the contract's ``forward`` on device arrays, (M, Kd) x (N, Kd).T.

    On "cuda" that is one GEMM launch with the bias + relu epilogue fused.
    """
    from fastnn.kernels import codes as C

    X = K.to_device(rng.standard_normal((M, Kd)).astype(np.float32))
    W = K.to_device(rng.standard_normal((N, Kd)).astype(np.float32))
    b, out = K.device_zeros(N, np.float32), K.device_zeros((M, N), np.float32)
    return lambda: K.forward(X, W, b, C.RELU, out)


# (n, in, out) of a layer, and the tiles (BM, BN, BK, TM, TN) to time on its three products
TILE_SWEEP = [
    ((1024, 2048, 2048), [(64, 64, 16, 4, 4), (64, 64, 8, 4, 4), (128, 64, 8, 8, 4),
                          (64, 128, 8, 4, 8), (128, 128, 8, 8, 8), (128, 128, 16, 8, 8)]),
    ((128, 784, 256), [(32, 32, 16, 2, 2), (32, 32, 8, 2, 2), (32, 32, 32, 2, 2),
                       (32, 64, 16, 2, 4), (64, 64, 16, 4, 4)]),
]


def _tile_sweep(K, np, torch, repeats, shape, tiles):
    """Each GEMM form of one layer, per tile: ms, error, % of cuBLAS."""
    from fastnn.kernels import codes as C
    from fastnn.kernels import _cuda_gemm

    n, fi, o = shape
    print(f"layer n={n} in={fi} out={o}")
    dt = np.dtype(np.float32)
    rng = np.random.default_rng(1)
    state = K.new_state()
    X = rng.standard_normal((n, fi)).astype(np.float32)
    W = rng.standard_normal((o, fi)).astype(np.float32)
    dZ = rng.standard_normal((n, o)).astype(np.float32)
    # (form, A, B, M, N, K, reference)
    forms = [("x_wt", X, W, n, o, fi, X @ W.T), ("dzt_a", dZ, X, o, fi, n, dZ.T @ X),
             ("dz_w", dZ, W, n, fi, o, dZ @ W)]
    Xt, Wt, dZt = (torch.from_numpy(a).cuda() for a in (X, W, dZ))
    cublas = {"x_wt": lambda: torch.matmul(Xt, Wt.T), "dzt_a": lambda: torch.matmul(dZt.T, Xt),
              "dz_w": lambda: torch.matmul(dZt, Wt)}
    print(f"{'tile':<24} " + " ".join(f"{f + ' ms':>9} {f + ' err':>8} {f + ' %':>5}"
                                      for f, *_ in forms))
    t_ref = {f: _timeit(cublas[f], torch.cuda.synchronize, repeats) for f, *_ in forms}
    for tile in tiles:
        cells = []
        for form, A, B, M, N, Kd, ref in forms:
            dA, dB = K.to_device(A), K.to_device(B)
            out = K.device_zeros((M, N), np.float32)
            vec = K.device_zeros(max(M, N), np.float32)
            aux = K.device_zeros((M, N), np.float32)
            act = C.IDENTITY
            args = (dA, dB, out, M, N, Kd, vec, aux if form == "dz_w" else out, act, state)
            try:
                t = _timeit(lambda: _cuda_gemm.launch(form, dt, *args, tile=tile),
                            K.synchronize, repeats)
            except Exception as e:  # a tile the device or compiler refuses
                cells.append(f"{'fail':>9} {type(e).__name__[:8]:>8} {'':>5}")
                continue
            got = out.copy_to_host()
            err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
            cells.append(f"{1e3 * t:>9.3f} {err:>8.1e} {100 * t_ref[form] / t:>4.0f}%")
        print(f"{str(tile):<24} " + " ".join(cells))
    print("cuBLAS ms: " + " ".join(f"{f} {1e3 * t:.3f}" for f, t in t_ref.items()))


def _torch_step(torch, batch, sizes):
    layers = []
    for i, o in zip(sizes[:-2], sizes[1:-1]):
        layers += [torch.nn.Linear(i, o), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    net = torch.nn.Sequential(*layers).cuda()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    X = torch.randn(batch, sizes[0], device="cuda")
    y = torch.randint(0, sizes[-1], (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(X), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _torch():
    """torch with TF32 off, or None (with a message) when it or its GPU is missing."""
    try:
        import torch
    except ImportError:
        torch = None
    if torch is None or not torch.cuda.is_available():
        print("gpu_bench: PyTorch with CUDA is not available; timing fastnn alone")
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def main():
    a = _parse()
    if a.simulate:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba is imported
    try:
        from numba import cuda
    except ImportError:
        print("gpu_bench: numba.cuda is not installed (pip install 'fastnn[cuda]'); nothing to do")
        return 0
    if not a.simulate and not cuda.is_available():
        print("gpu_bench: no CUDA GPU is available here (numba.cuda.is_available() is False); "
              "nothing timed. Use --simulate to check the script's logic in the CUDA simulator.")
        return 0
    import numpy as np

    from fastnn.kernels import codes as C
    from fastnn.kernels import numba_cuda as K

    torch = None if a.simulate else _torch()
    cases = SIM_CASES if a.simulate else CASES
    repeats = 1 if a.simulate else a.repeats
    rng = np.random.default_rng(0)
    name = "simulator" if a.simulate else cuda.get_current_device().name
    name = name.decode() if isinstance(name, bytes) else name
    print(f"device: {name}; float32, TF32 off, relu hidden, softmax + cross-entropy, SGD; "
          f"{repeats} timed steps per case")
    print(f"{'batch':>6} {'sizes':<22} {'fastnn ms':>10} {'fastnn dev ms':>14} {'torch ms':>9} "
          f"{'fastnn/torch':>12} {'GEMM/cuBLAS':>12}")
    for batch, sizes in cases:
        step, step_dev = _fastnn_step(K, C, np, batch, sizes, rng)
        loss, done = step()
        assert done == 1 and np.isfinite(loss), (loss, done)
        t_f = _timeit(step, K.synchronize, repeats)
        t_fd = _timeit(step_dev, K.synchronize, repeats)
        # the widest layer's forward product: (batch, in) x (out, in).T
        i = max(range(len(sizes) - 1), key=lambda l: sizes[l] * sizes[l + 1])
        M, N, Kd = batch, sizes[i + 1], sizes[i]
        t_g = _timeit(_fastnn_gemm(K, np, M, N, Kd, rng), K.synchronize, repeats)
        tt = ratio = frac = "n/a"
        if torch is not None:
            t_t = _timeit(_torch_step(torch, batch, sizes), torch.cuda.synchronize, repeats)
            Xt, Wt = torch.randn(M, Kd, device="cuda"), torch.randn(N, Kd, device="cuda")
            t_mm = _timeit(lambda: torch.matmul(Xt, Wt.T), torch.cuda.synchronize, repeats)
            tt, ratio, frac = f"{1e3 * t_t:.3f}", f"{t_f / t_t:.2f}", f"{100 * t_mm / t_g:.0f}%"
        label = "-".join(map(str, sizes))
        print(f"{batch:>6} {label:<22} {1e3 * t_f:>10.3f} {1e3 * t_fd:>14.3f} {tt:>9} "
              f"{ratio:>12} {frac:>12}")
    if a.tiles and torch is not None:
        for shape, tiles in TILE_SWEEP:
            _tile_sweep(K, np, torch, repeats, shape, tiles)
    if a.simulate:
        print("(simulator: the logic ran; these times say nothing about a GPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
