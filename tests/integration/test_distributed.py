"""fastnn.distributed: data-parallel fit under mpiexec -n 2 and -n 3, faults, resume.

The MPI tests launch ``tests/mpi_scripts/worker.py`` with mpiexec from a temporary directory (so
the installed fastnn is imported), with a timeout so that a hang fails instead of blocking.
"""

import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import CPU_BACKENDS
from mpi_scripts import worker

import fastnn
from fastnn import distributed
from fastnn.optim import get_optimizer
from fastnn.training import fit as serial_fit
from fastnn._trainer import body_for
from fastnn._validation import targets
from fastnn.kernels.codes import H_L2

WORKER = Path(__file__).resolve().parents[1] / "mpi_scripts" / "worker.py"
TIMEOUT = 180  # seconds per launch: generous for a first Numba compile on a loaded machine
# Only Open MPI reads these (MPICH ignores them): run as root, and more ranks than cores.
OPEN_MPI_ENV = dict(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                    OMPI_MCA_rmaps_base_oversubscribe="1",
                    PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe")


def _mpiexec():
    """The mpiexec next to this Python (the pip ``mpich`` wheel), else the one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def _why_no_mpi():
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'fastnn-mlp[mpi]')"
    if _mpiexec() is None:
        return "no mpiexec found next to Python or on PATH (pip install mpich)"
    return None


needs_mpi = pytest.mark.skipif(_why_no_mpi() is not None, reason=str(_why_no_mpi()))


def launch(n, scenario, tmp_path):
    """Run the worker on ``n`` ranks; returns each rank's (json, npz) outcome."""
    out = tmp_path / f"{scenario}-{n}"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1", CKPT_DIR=str(out), **OPEN_MPI_ENV)
    cmd = [_mpiexec(), "-n", str(n), sys.executable, str(WORKER), scenario, str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this test started: mpiexec and its ranks
        log, _ = proc.communicate()
        pytest.fail(f"mpiexec -n {n} {scenario} hung for {TIMEOUT} s:\n{log[-3000:]}")
    assert proc.returncode == 0, f"mpiexec -n {n} {scenario} failed:\n{log[-3000:]}"
    ranks = []
    for r in range(n):
        info = json.loads((out / f"rank{r}.json").read_text())
        assert info["size"] == n, (f"rank {r} saw {info['size']} ranks: mpiexec and mpi4py use "
                                   "different MPI libraries")
        with np.load(out / f"rank{r}.npz") as z:
            ranks.append((info, {k: z[k] for k in z.files}))
    return ranks


def serial_reference(backend, opt, output, k, size):
    """One process trained on the concatenation of every rank's batch, step by step."""
    fastnn.set_backend(backend)
    model = worker.model(output, k, seed=0)
    shards = [worker.shard(r, output, k) for r in range(size)]
    steps = max(math.ceil(X.shape[0] / worker.BATCH) for X, _ in shards)
    losses = []
    for epoch in range(worker.EPOCHS):
        orders = [np.random.default_rng([worker.SEED, r, epoch]).permutation(X.shape[0])
                  for r, (X, _) in enumerate(shards)]
        total, rows = 0.0, 0
        for s in range(steps):
            take = [o[s * worker.BATCH:(s + 1) * worker.BATCH] for o in orders]
            Xg = np.concatenate([X[i] for (X, _), i in zip(shards, take)])
            yg = np.concatenate([y[i] for (_, y), i in zip(shards, take)])
            total += model.loss(Xg, yg) * len(Xg)  # the batch loss the step sees
            rows += len(Xg)
            serial_fit(model, Xg, yg, epochs=1, batch_size=len(Xg), lr=worker.LR,
                       optimizer=opt, shuffle=False, progress=False, l2=worker.L2)
        penalty = 0.5 * worker.L2 * sum(float(np.sum(layer.W ** 2)) for layer in model.layers)
        losses.append(total / rows + penalty)
    return model.store.theta, np.array(losses)


@pytest.fixture(autouse=True)
def _restore_backend():
    old = fastnn.get_backend()
    yield
    fastnn.set_backend(old)


# --- in-process checks, no MPI needed (they run first and warm Numba's cache for the ranks) --
@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov", "adam"])
def test_one_step_matches_the_serial_fit(backend, opt, rng):
    """The step that every rank runs (local gradient, then fused updates) on a single rank."""
    X, y = rng.normal(size=(9, 5)), rng.integers(0, 3, 9)
    ref = worker.model("softmax", 3)
    serial_fit(ref, X, y, epochs=1, batch_size=9, lr=0.1, optimizer=opt, shuffle=False,
               progress=False, l2=0.01)
    m = worker.model("softmax", 3)
    o = get_optimizer(opt, 0.1)
    spec = m.spec
    P = m.n_params
    Y = targets(y, spec.loss, 9, spec.n_out, spec.dtype)
    K = fastnn._backend.kernels()
    body = body_for(m, K, o, X, Y, None, 9, False, reducer=_Alone(), n_batches=1, rows=9)
    body.trainer.hyper[:] = o.hyper()
    body.trainer.hyper[H_L2] = 0.01
    body.epoch(None, 1, None)
    assert body.send[P] == 9 and body.send[P + 2] == 0
    np.testing.assert_allclose(m.store.theta, ref.store.theta, rtol=1e-12, atol=1e-14)


class _Alone:
    """The reducer of a single process: the sum over one rank is its own part."""

    def allreduce(self, send, recv):
        recv[...] = send

    def failed(self, exc, what):
        raise RuntimeError(what) from exc

    def diverged(self, local_bad, where, what, kept):
        raise FloatingPointError(f"{where}: {what}")


def test_checkpoint_round_trip_and_foreign_files(tmp_path, rng):
    m = worker.model("softmax", 3)
    o = get_optimizer("adam", 0.1)
    m.store.use_optimizer(o.code, o.n_state)
    s1 = m.store.s1
    s1[:] = rng.normal(size=s1.size)
    m.store.step = 4
    path = tmp_path / "c.npz"
    distributed.save_checkpoint(path, m, 3, 7, [1.0, 0.5])
    got, extra = distributed.load_checkpoint(path)
    np.testing.assert_array_equal(got.store.theta, m.store.theta)
    np.testing.assert_array_equal(got.store.s1, s1)
    assert got.store.step == 4 and got.store.opt_code == m.store.opt_code
    assert int(extra["epoch"]) == 3 and int(extra["seed"]) == 7
    assert list(extra["loss"]) == [1.0, 0.5]
    m.save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match="not a distributed checkpoint"):
        distributed.load_checkpoint(tmp_path / "model.npz")
    np.savez(tmp_path / "other.npz", theta=m.store.theta)
    with pytest.raises(ValueError):
        distributed.load_checkpoint(tmp_path / "other.npz")


# --- under mpiexec ----------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_k_ranks_match_one_process_on_the_concatenated_batches(n, tmp_path):
    ranks = launch(n, "equivalence", tmp_path)
    assert ranks[0][0]["backends"] == CPU_BACKENDS
    for backend in CPU_BACKENDS:
        for opt, output, k in worker.CASES:
            key = f"{backend}-{opt}"
            theta, losses = serial_reference(backend, opt, output, k, n)
            got = ranks[0][1]
            np.testing.assert_allclose(got[key], theta, rtol=1e-10, atol=1e-12, err_msg=key)
            np.testing.assert_allclose(got[key + "-loss"], losses, rtol=1e-10, err_msg=key)
            for r in range(1, n):  # the replicas stay bitwise identical
                np.testing.assert_array_equal(ranks[r][1][key], got[key], err_msg=f"{key} {r}")


@needs_mpi
def test_faults_stop_every_rank_with_the_same_clear_error(tmp_path):
    ranks = launch(2, "faults", tmp_path)
    for info, arrays in ranks:
        e = info["nan_data"]
        assert e["error"] == "ValueError" and "rank 1: ValueError: X contains NaN" in e["message"]
        e = info["diverge"]
        assert e["error"] == "FloatingPointError" and "epoch" in e["message"]
        assert "step" in e["message"] and e["finite"]
        e = info["overflow"]
        assert e["error"] == "FloatingPointError" and e["finite"]
        assert "non-finite on rank 1)" in e["message"]
        e = info["mismatch"]
        assert e["error"] == "ValueError" and "disagree on epochs" in e["message"]
        e = info["raises"]
        assert e["error"] == "RuntimeError" and "rank 1: MemoryError: simulated" in e["message"]
        e = info["bad_checkpoint"]
        assert e["error"] == "RuntimeError" and "could not write the checkpoint" in e["message"]
        assert "rank 0:" in e["message"]
        assert info["after"]["error"] is None
        assert info == ranks[0][0]
        np.testing.assert_array_equal(arrays["diverge"], ranks[0][1]["diverge"])


@needs_mpi
def test_resume_equals_an_uninterrupted_run(tmp_path):
    for info, arrays in launch(2, "resume", tmp_path):
        np.testing.assert_array_equal(arrays["resumed"], arrays["whole"])
        assert info["loss_resumed"] == info["loss_whole"]
        assert info["opt_t"][0] == info["opt_t"][1]
        e = info["wrong_model"]
        assert e["error"] == "ValueError" and "cannot resume" in e["message"]
        assert "different architecture" in e["message"]
