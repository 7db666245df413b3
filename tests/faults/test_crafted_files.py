"""Crafted model files: every malformed archive raises ModelFileError, cheaply.

A generator builds malformed files from one valid saved model: truncations, renamed, removed and
added members, foreign members, object and structured dtypes, huge declared shapes, zip bombs,
odd compression methods, corrupt .npy headers, bad metadata, bad optimiser state and wrong
digests. Each must be refused with a ``fastnn.ModelFileError`` whose message names the problem,
and loading the worst of them must not use much more memory than the model itself.
"""

import functools
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import fastnn
from fastnn import _format as fio

SIZES = [5, 7, 4, 3]
N_PARAMS = sum(o * i + o for i, o in zip(SIZES[:-1], SIZES[1:]))
PARAM_BYTES = N_PARAMS * 8
NOT_NPZ = "not an .npz archive"


@functools.lru_cache(maxsize=None)
def good_bytes():
    """A valid file: float64, Adam state, an extra array."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, SIZES[0])), rng.integers(0, SIZES[-1], 40)
    model = fastnn.MLP.from_sizes(SIZES, hidden="tanh", dtype=np.float64, seed=0)
    model.fit(X, y, epochs=2, lr=0.01, optimizer="adam", seed=0, progress=False)
    return _save_bytes(model)


def _save_bytes(model):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.npz")
        fastnn.io.save(model, path, extra={"classes": np.array(["a", "b", "c"])})
        with open(path, "rb") as f:
            return f.read()


# --- building blocks ------------------------------------------------------------------------
def arrays_of(raw):
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def members_of(raw):
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def zip_of(entries, method=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # a duplicate name, on purpose
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


def npy(a, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_header(descr, shape, version=1, text=None):
    """A bare .npy header (no data), optionally with raw header text."""
    text = text or repr({"descr": descr, "fortran_order": False, "shape": shape})
    body = text.encode("latin1")
    pad = 64 - (10 + len(body) + 1) % 64
    body += b" " * pad + b"\n"
    fmt = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, len(body)) + body


def resigned(change):
    """Pass every array through ``change`` (None drops it), recompute the digest, save."""
    def build(raw):
        arrays = {}
        for k, v in arrays_of(raw).items():
            v = change(k, v)
            if v is not None:
                arrays[k] = v
        arrays["digest"] = np.array(fio._digest(arrays))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()
    return build


def replace_member(name, data=None, new_name=None, drop=False, add=()):
    def build(raw):
        out = []
        for n, d in members_of(raw):
            if n == name:
                if drop:
                    continue
                n, d = new_name or n, d if data is None else data
            out.append((n, d))
        return zip_of(out + list(add))
    return build


def patch_entry(name, method=None, flags=None, file_size=None, compress_size=None):
    """Patch a member's fields in both its local header and its central directory entry."""
    def build(raw):
        raw = bytearray(raw)
        for sig, base, name_at in ((b"PK\x03\x04", 0, 30), (b"PK\x01\x02", 2, 46)):
            pos = raw.find(sig)
            while pos >= 0:
                nlen = struct.unpack_from("<H", raw, pos + base + 26)[0]
                if raw[pos + name_at:pos + name_at + nlen] == name.encode():
                    for value, off, fmt in ((flags, 6, "<H"), (method, 8, "<H"),
                                            (compress_size, 18, "<I"), (file_size, 22, "<I")):
                        if value is not None:
                            struct.pack_into(fmt, raw, pos + base + off, value)
                pos = raw.find(sig, pos + 4)
        return bytes(raw)
    return build


def bomb(name, header, n_zero_bytes):
    """Deflated ``header + zeros`` in place of member ``name``, via a real deflate stream."""
    def build(raw):
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        crc, parts = zlib.crc32(header), [comp.compress(header)]
        zero = bytes(1 << 20)
        for _ in range(n_zero_bytes >> 20):
            crc = zlib.crc32(zero, crc)
            parts.append(comp.compress(zero))
        parts.append(comp.flush())
        data = b"".join(parts)
        size = len(header) + (n_zero_bytes >> 20 << 20)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, d in members_of(raw):
                if n != name:
                    z.writestr(n, d)
        # append the member by hand: local header, data, then rebuild the directory
        return _append_raw_member(buf.getvalue(), name, data, crc, size)
    return build


def _append_raw_member(raw, name, data, crc, size):
    entries = members_of(raw)
    out, central = io.BytesIO(), io.BytesIO()
    items = [(n, d, zipfile.ZIP_STORED, zlib.crc32(d), len(d), len(d)) for n, d in entries]
    items.append((name, data, zipfile.ZIP_DEFLATED, crc, len(data), size))
    for n, d, method, c, csize, usize in items:
        offset = out.tell()
        nb = n.encode()
        out.write(struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0, c, csize,
                              usize, len(nb), 0) + nb + d)
        central.write(struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, method, 0, 0, c,
                                  csize, usize, len(nb), 0, 0, 0, 0, 0, offset) + nb)
    cd = central.getvalue()
    start = out.tell()
    out.write(cd + struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(items), len(items),
                               len(cd), start, 0))
    return out.getvalue()


def truncated(n):
    return lambda raw: raw[:n if n >= 0 else len(raw) + n]


def splice(raw):
    """Cut 100 bytes out of the middle: the directory's offsets then point at the wrong data."""
    mid = len(raw) // 2
    return raw[:mid] + raw[mid + 100:]


def flip_theta(raw):
    raw = bytearray(raw)
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        info = z.getinfo("theta.npy")
    raw[info.header_offset + 30 + len(info.filename) + 128 + 40] ^= 0xFF
    return bytes(raw)


def set_(key, value):
    return resigned(lambda k, a: value(a) if k == key else a)


THETA_H = npy_header("<f8", (N_PARAMS,))
BIG = 1 << 62
# (id, builder from the valid file's bytes, regex the message must match)
CASES = [
    *[(f"truncated-{n}", truncated(n), NOT_NPZ) for n in
      (0, 1, 4, 30, 100, 1000, 2000, -1, -10, -22, -100, -400)],
    ("truncated-half", lambda raw: raw[:len(raw) // 2], NOT_NPZ),
    ("spliced-middle", splice, "OSError|BadZipFile|not an .npz archive"),
    ("text-file", lambda raw: b"hello, world\n", NOT_NPZ),
    ("single-npy", lambda raw: npy(np.zeros(3)), NOT_NPZ),
    ("renamed-theta", replace_member("theta.npy", new_name="weights.npy"),
     "unexpected member 'weights.npy'"),
    ("renamed-format", replace_member("format.npy", new_name="fmt.npy"), "format tag"),
    ("renamed-traversal", replace_member("theta.npy", new_name="../theta.npy"),
     "unexpected member '../theta.npy'"),
    ("renamed-nested-extra", replace_member("extra/classes.npy", new_name="extra/a/b.npy"),
     "unexpected member"),
    ("removed-theta", replace_member("theta.npy", drop=True), r"missing fields \['theta'\]"),
    ("removed-digest", replace_member("digest.npy", drop=True), "missing fields"),
    ("removed-opt_s1", replace_member("opt_s1.npy", drop=True), "incomplete optimiser state"),
    ("removed-opt_t", replace_member("opt_t.npy", drop=True), "incomplete optimiser state"),
    ("added-member", replace_member("loss.npy", add=[("evil.npy", npy(np.zeros(2)))]),
     "unexpected member 'evil.npy'"),
    ("added-directory", replace_member("loss.npy", add=[("dir/", b"")]), "unexpected member"),
    ("added-unsigned-extra", replace_member("loss.npy",
                                            add=[("extra/x.npy", npy(np.zeros(2)))]), "digest"),
    ("duplicate-theta", replace_member("loss.npy", add=[("theta.npy", npy(np.zeros(89)))]),
     "twice"),
    ("non-npy-theta", replace_member("theta.npy", data=b"just some bytes, not numpy"),
     "'theta.npy' is not an .npy array"),
    ("pickle-member", replace_member("theta.npy", data=b"\x80\x04\x95" + bytes(40)),
     "not an .npy array"),
    ("object-theta", replace_member("theta.npy", data=npy(np.array([{}], object), True)),
     "pickled Python objects"),
    ("object-extra", replace_member("extra/classes.npy",
                                    data=npy(np.array([1, "a"], object), True)), "pickled"),
    ("structured-extra", replace_member("extra/classes.npy",
                                        data=npy(np.zeros(2, "i4,f8"))), "unsupported dtype"),
    ("complex-theta", replace_member("theta.npy", data=npy(np.zeros(N_PARAMS, complex))),
     "unsupported dtype"),
    ("huge-shape-theta", replace_member("theta.npy", data=npy_header("<f8", (10 ** 12,))),
     r"declares shape \(1000000000000,\)"),
    ("huge-shape-2d-extra", replace_member("extra/classes.npy",
                                           data=npy_header("<f8", (BIG, BIG))), "declares shape"),
    ("huge-shape-sizes", replace_member("sizes.npy", data=npy_header("<i8", (10 ** 10,))),
     "declares shape"),
    ("negative-shape", replace_member("theta.npy", data=npy_header("<f8", (-5,))),
     "bad shape|shape"),
    ("huge-architecture", set_("sizes", lambda a: np.array([10 ** 6, 10 ** 6, 10 ** 6, 3])),
     "does not fit the architecture"),
    ("too-many-layers", set_("sizes", lambda a: np.ones(fio.MAX_LAYERS + 2, np.int64)),
     "layers"),
    ("huge-header-v2", replace_member("theta.npy", data=npy_header("<f8", (89,), 2)[:8] +
                                      struct.pack("<I", 2 ** 31) + b"{"),
     "'theta.npy' has a .npy header of 2147483648 bytes"),
    ("bomb-header", bomb("theta.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 64 << 20),
                         64 << 20), "'theta.npy' has a .npy header of 67108864 bytes"),
    ("npy-version-3", replace_member("theta.npy", data=b"\x93NUMPY\x03\x00" + THETA_H[8:]),
     "version"),
    ("corrupt-header-text", replace_member("theta.npy", data=npy_header(
        "", (), text="{'descr': '<f8', 'fortran_order': False, 'shape': (89,") + bytes(712)),
     "theta.npy|header"),
    ("header-wrong-keys", replace_member("theta.npy", data=npy_header(
        "", (), text="{'dexcr': '<f8', 'fortran_order': False, 'shape': (89,)}") + bytes(712)),
     "theta.npy|header|descr"),
    ("bomb-theta-lying-header", bomb("theta.npy", THETA_H, 64 << 20), "zip bomb"),
    ("bomb-consistent-extra", bomb("extra/classes.npy", npy_header("<f8", (16 << 20,)),
                                   128 << 20), "extra arrays declare"),
    ("lying-size-deflate", patch_entry("theta.npy", method=8, file_size=2 ** 31),
     "zip bomb|compression"),
    ("lying-size-stored", patch_entry("theta.npy", file_size=2 ** 31, compress_size=2 ** 31),
     "runs past the end"),
    *[(f"method-{m}", patch_entry("theta.npy", method=m), "compression method")
      for m in (1, 9, 12, 14, 99)],
    ("encrypted-flag", patch_entry("theta.npy", flags=1), "encrypted"),
    ("bit-flip-theta", flip_theta, "Bad CRC-32 for file 'theta.npy'"),
    ("format-tag-foreign", set_("format", lambda a: np.array("other-tool")), "format tag"),
    ("version-newer", set_("version", lambda a: np.array(fio.VERSION + 1)), "newer"),
    ("version-zero", set_("version", lambda a: np.array(0)), "bad format version"),
    ("version-string", set_("version", lambda a: np.array("1")), "'version' has the wrong type"),
    ("sizes-float", set_("sizes", lambda a: a.astype(float)), "'sizes' has the wrong type"),
    ("sizes-zero", set_("sizes", lambda a: np.array([5, 0, 4, 3])), "bad layer sizes"),
    ("activations-unknown", set_("activations", lambda a: np.array(["tanh", "gelu", "softmax"])),
     "unknown activations"),
    ("activations-long", set_("activations", lambda a: np.array(["x" * 5000] * 3)),
     "'activations' has the wrong type"),
    ("loss-mismatch", set_("loss", lambda a: np.array("mse")), "does not fit the output"),
    ("dtype-int8", set_("dtype", lambda a: np.array("int8")), "unsupported dtype 'int8'"),
    ("metadata-json", set_("format", lambda a: np.array(json.dumps({"format": "fastnn-mlp"}))),
     "format tag"),
    ("theta-nan", set_("theta", lambda a: np.full_like(a, np.nan)), "parameters contain NaN"),
    ("theta-short", set_("theta", lambda a: a[:-1]), "does not fit the architecture"),
    ("adam-step-negative", set_("opt_t", lambda a: np.array(-1)), "step count -1"),
    ("adam-step-float", set_("opt_t", lambda a: np.array(1.5)), "'opt_t' has the wrong type"),
    ("adam-step-huge", set_("opt_t", lambda a: np.array(2 ** 63 + 5, np.uint64)),
     "out of range"),
    ("adam-s1-nan", set_("opt_s1", lambda a: np.full_like(a, np.nan)), "state contains NaN"),
    ("adam-s2-inf", set_("opt_s2", lambda a: np.full_like(a, np.inf)), "state contains NaN"),
    ("adam-s1-short", set_("opt_s1", lambda a: a[:-3]), "does not fit the parameters"),
    ("adam-s2-float32", set_("opt_s2", lambda a: a.astype(np.float32)), "does not fit"),
    ("adam-s2-empty", set_("opt_s2", lambda a: a[:0]), "keeps 2 state vectors"),
    ("opt-code-unknown", set_("opt_code", lambda a: np.array(7)), "unknown optimiser code"),
    ("digest-wrong", replace_member("digest.npy", data=npy(np.array("0" * 64))), "digest"),
    ("digest-not-string", replace_member("digest.npy", data=npy(np.array(3))),
     "'digest' has the wrong type"),
    ("unsigned-edit", replace_member("loss.npy", data=npy(np.array(""))), "digest"),
]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crafted")
    raw = good_bytes()
    paths = {}
    for name, build, _ in CASES:
        paths[name] = folder / f"{name}.npz"
        paths[name].write_bytes(build(raw))
    return paths


def test_the_generator_makes_enough_distinct_files(crafted):
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)
    contents = {p.read_bytes() for p in crafted.values()}
    assert len(contents) == len(CASES) and good_bytes() not in contents


def test_the_valid_file_loads(tmp_path):
    (tmp_path / "good.npz").write_bytes(good_bytes())
    model = fastnn.load(tmp_path / "good.npz")
    assert model.sizes == SIZES and model.store.step > 0


@pytest.mark.parametrize("name,message", [(c[0], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_each_crafted_file_raises_model_file_error(crafted, name, message):
    path = crafted[name]
    with pytest.raises(fastnn.ModelFileError, match=message) as info:
        fastnn.load(path)
    assert repr(str(path)) in str(info.value)          # the message names the file


def test_non_regular_paths_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)                                     # opening it for reading would block
    with pytest.raises(fastnn.ModelFileError, match="FIFO"):
        fastnn.load(fifo)
    with pytest.raises(fastnn.ModelFileError, match="directory"):
        fastnn.load(tmp_path)
    if os.path.exists("/dev/null"):
        with pytest.raises(fastnn.ModelFileError, match="device"):
            fastnn.load("/dev/null")
    os.symlink(fifo, tmp_path / "link.npz")
    with pytest.raises(fastnn.ModelFileError, match="FIFO"):
        fastnn.load(tmp_path / "link.npz")


_MEASURE = """
import json, resource, sys, tracemalloc
import fastnn
fastnn.load(sys.argv[1])                       # warm up: imports, first allocations
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
peaks, refused = {}, 0
for path in sys.argv[1:]:
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fastnn.load(path)
    except fastnn.ModelFileError:
        refused += 1
    peaks[path] = tracemalloc.get_traced_memory()[1] - base
rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) * 1024
print(json.dumps({"refused": refused, "peaks": peaks, "rss": rss}))
"""


def test_peak_memory_on_crafted_files_stays_near_the_model_size(crafted, tmp_path):
    """Peak allocations (tracemalloc) and RSS growth while loading every crafted file."""
    good = tmp_path / "good.npz"
    good.write_bytes(good_bytes())
    paths = [str(p) for p in crafted.values()]
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(good), *paths],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    got = json.loads(out)
    assert got["refused"] == len(paths)
    limit = 20 * PARAM_BYTES + 20 * 2 ** 20
    worst = max(paths, key=got["peaks"].get)
    assert got["peaks"][worst] < limit, f"{worst}: peak {got['peaks'][worst]} bytes"
    assert got["rss"] < limit, f"peak RSS grew {got['rss']} bytes"
    assert got["peaks"][str(good)] > PARAM_BYTES     # the measure sees the model's arrays
    print(f"worst: {os.path.basename(worst)}, peak {got['peaks'][worst]} bytes "
          f"({got['peaks'][worst] / PARAM_BYTES:.1f}x the parameters); "
          f"good file {got['peaks'][str(good)]} bytes; RSS growth {got['rss']} bytes")
