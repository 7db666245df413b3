"""The model file format: versioned ``.npz`` files of plain arrays, never pickles.

A file holds a format tag and version, the architecture (widths, activations), the dtype, the
flat parameters, optionally the optimiser state and user arrays under ``extra/``, a SHA-256
digest of all of it and, when saved with a key, an HMAC-SHA256 signature. ``write`` and
``read`` deal in arrays; ``MLP.save``/``MLP.load`` (and ``fastnn.io``) turn them into models.

The digest is a checksum (it catches damaged or carelessly edited files), not authentication:
anyone can recompute it. Only the keyed signature (``key=``) says a key holder wrote a file.

``read`` takes untrusted files: a FIFO, device or directory is refused unopened; the zip
directory and every ``.npy`` header are checked against the architecture the file declares
before any data is read, so a small crafted file cannot make it allocate more than the model
it describes. Every malformed file raises ``ModelFileError``, naming the problem and the path.
"""

import hashlib
import hmac
import io
import os
import re
import stat
import tempfile
import zipfile
from typing import Any, BinaryIO, Callable, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from .kernels.codes import (
    ACTIVATIONS, LOSS_ACTIVATION, LOSSES, OPT_ADAM, OPT_MOMENTUM, OPT_NESTEROV, OPT_SGD,
)
from .kernels.layout import param_size
from .kernels.layout import param_views as param_views_of

FORMAT = "fastnn-mlp"
VERSION = 1
_REQUIRED = ("format", "version", "sizes", "activations", "loss", "dtype", "theta", "digest")
_OPT_KEYS = ("opt_code", "opt_t", "opt_s1", "opt_s2")
_UNSIGNED = ("digest", "signature")     # the members the digest and the signature leave out
_N_STATE = {OPT_SGD: 0, OPT_MOMENTUM: 1, OPT_NESTEROV: 1, OPT_ADAM: 2}

MAX_LAYERS = 4096             # layers a file may declare
META_BYTES = 1 << 20          # bytes all members but theta, opt_s1/2 and extras may declare
EXTRA_BYTES = 8 << 20         # bytes the extras may declare, beyond the size of theta
MAX_EXTRAS = 1024             # extra arrays a file may hold
_MAX_HEADER = 4096            # bytes of one .npy header
_CHUNK = 1 << 20              # bytes read at a time
_DEFLATE_RATIO = 1100         # deflate cannot expand more than ~1032:1
_NAME = re.compile(r"(format|version|sizes|activations|loss|dtype|theta|digest|signature|"
                   r"opt_code|opt_t|opt_s1|opt_s2|extra/[^/]+)\.npy")
# per metadata member: allowed dtype kinds, ndim, and the most characters of a string
_META = {"format": ("U", 0, 64), "version": ("iu", 0, 0), "sizes": ("iu", 1, 0),
         "activations": ("U", 1, 64), "loss": ("U", 0, 64), "dtype": ("U", 0, 64),
         "digest": ("U", 0, 128), "signature": ("U", 0, 128), "opt_code": ("iu", 0, 0),
         "opt_t": ("iu", 0, 0)}


class ModelFileError(ValueError):
    """A model file is malformed, damaged, foreign, or fails its digest or signature check."""


def _hashes(arrays, key=None):
    """SHA-256 over every array but the digest, in name order (names, dtypes, shapes, bytes),
    and with ``key`` the HMAC-SHA256 of the same less the signature."""
    h = hashlib.sha256()
    mac = hmac.new(key, digestmod=hashlib.sha256) if key is not None else None
    for name in sorted(arrays):
        if name == "digest":
            continue
        a = np.ascontiguousarray(arrays[name])
        for t in ([h] if mac is None or name in _UNSIGNED else [h, mac]):
            t.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            t.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest(), (mac.hexdigest() if mac is not None else None)


def _digest(arrays):
    """The SHA-256 hex digest of ``arrays`` as stored in a file (a checksum, not a signature)."""
    return _hashes(arrays)[0]


def _check_key(key):
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise TypeError(f"key must be non-empty bytes, got {type(key).__name__}")
    return bytes(key)


def _plain(name, value):
    a = np.asarray(value)
    if a.dtype.kind not in "biufU":
        raise ValueError(f"extra[{name!r}] must be an array of numbers or strings, got dtype "
                         f"{a.dtype}")
    return a


def write(path: Union[str, os.PathLike], *, sizes: Sequence[int],
          activations: Sequence[str], loss: Optional[str], theta: np.ndarray,
          opt: Optional[tuple] = None, extra: Optional[Mapping[str, Any]] = None,
          key: Optional[bytes] = None) -> None:
    """Write a model's arrays to ``path`` as a versioned ``.npz`` (written whole, then renamed).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, named as given (no suffix added); see ``atomic_write``.
    sizes : list of int
        Input width, then each layer's width.
    activations : list of str
        Each layer's activation name.
    loss : str or None
        The loss name (None for an inference-only model).
    theta : ndarray
        The flat parameter vector (float32 or float64).
    opt : tuple, optional
        ``(code, step, s1, s2)``: the optimiser state, so that training can resume exactly.
    extra : dict of str to array_like, optional
        Extra arrays of numbers or strings to keep with the model.
    key : bytes, optional
        Also store an HMAC-SHA256 signature with this key; ``read(path, key=key)`` checks it.
    """
    key = None if key is None else _check_key(key)
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION, np.int64),
              "sizes": np.array(sizes, np.int64), "activations": np.array(activations),
              "loss": np.array("" if loss is None else loss),
              "dtype": np.array(theta.dtype.name), "theta": theta}
    if opt is not None:
        code, step, s1, s2 = opt
        arrays.update(opt_code=np.array(code, np.int64), opt_t=np.array(step, np.int64),
                      opt_s1=s1, opt_s2=s2)
    for name, value in (extra or {}).items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"extra names must be non-empty strings without '/', got {name!r}")
        arrays["extra/" + name] = _plain(name, value)
    if key is not None:
        # signed first, then the digest covers the signature too, so older readers still check
        arrays["signature"] = np.array(_hashes(arrays, key)[1])
    arrays["digest"] = np.array(_digest(arrays))
    atomic_write(path, lambda f: np.savez(f, **arrays))


# saving ------------------------------------------------------------------------------------
def _umask():
    try:
        with open("/proc/self/status") as f:
            return int(next(l for l in f if l.startswith("Umask:")).split()[1], 8)
    except (OSError, ValueError, StopIteration):
        mask = os.umask(0o022)      # no other portable way to read it (and not thread-safe)
        os.umask(mask)
        return mask


def _remove_stale(folder, prefix):
    """Remove temporary files of earlier saves to the same file whose process has ended."""
    for name in os.listdir(folder):
        pid = name[len(prefix):].split("-", 1)[0] if name.startswith(prefix) else ""
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)                    # still running: maybe saving right now
        except ProcessLookupError:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass
        except (OverflowError, OSError):
            pass


def atomic_write(path: Union[str, os.PathLike],
                 fill: Callable[[BinaryIO], None]) -> None:
    """Write a file whole, then rename it over ``path`` (through a symlink, to its target).

    The temporary file, ``.<name>.fastnn-tmp-<pid>-XXXX`` next to the target, is removed on
    any error, and a later save to the same path removes those left by a killed process.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; the new file gets the permissions the umask gives.
    fill : callable
        ``fill(f)`` writes the contents to the binary file object ``f``.
    """
    target = os.path.realpath(os.fspath(path))
    folder, name = os.path.split(target)
    prefix = "." + name[:120] + ".fastnn-tmp-"
    _remove_stale(folder, prefix)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# reading -----------------------------------------------------------------------------------
def _bad(path, why):
    return ModelFileError(f"{path!r} is not a valid fastnn model file: {why}")


def _open_regular(path):
    """Open ``path`` for reading only if it is a regular file; a FIFO never blocks."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such model file: {path!r}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, socket or device"
        raise ModelFileError(f"{path!r} is {kind}, not a regular fastnn model file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the stat and the open
            raise ModelFileError(f"{path!r} is not a regular file, not a fastnn model file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _Member:
    """One archive member as its directory entry and ``.npy`` header declare it."""

    def __init__(self, info, dtype, shape, fortran, offset):
        self.info, self.dtype, self.shape, self.fortran = info, dtype, shape, fortran
        self.offset = offset                        # where the data starts in the member
        self.count = int(np.prod(shape, dtype=object)) if shape else 1
        self.nbytes = self.count * dtype.itemsize


def _directory(zf, path, archive_size):
    """The archive's members by key, checked before any member is opened."""
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if "format.npy" not in names:
        raise _bad(path, f"it has no {FORMAT!r} format tag (written by another program?)")
    if len(infos) > len(_META) + len(_OPT_KEYS) + 2 + MAX_EXTRAS:
        raise _bad(path, f"it has {len(infos)} members, too many for a model file")
    if len(set(names)) != len(names):
        raise _bad(path, "it lists a member twice")
    for info in infos:
        if not _NAME.fullmatch(info.filename):
            raise _bad(path, f"unexpected member {info.filename!r}")
        if info.flag_bits & 0x1:
            raise _bad(path, f"member {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _bad(path, f"member {info.filename!r} uses compression method "
                             f"{info.compress_type}; only stored and deflated are read")
        if info.header_offset + info.compress_size > archive_size:
            raise _bad(path, f"member {info.filename!r} runs past the end of the file "
                             "(truncated?)")
        limit = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED
                                      else _DEFLATE_RATIO)
        if info.file_size > limit + 64:
            raise _bad(path, f"member {info.filename!r} declares {info.file_size} bytes from "
                             f"{info.compress_size} stored bytes (a zip bomb?)")
    return {i.filename[:-len(".npy")]: i for i in infos}


def _header(zf, info, path):
    """Read one member's ``.npy`` header (not its data) and check it against its size."""
    fmt = np.lib.format
    with zf.open(info) as f:
        try:
            version = fmt.read_magic(f)
        except ValueError:
            raise _bad(path, f"member {info.filename!r} is not an .npy array") from None
        if version not in ((1, 0), (2, 0)):
            raise _bad(path, f"member {info.filename!r} has .npy version {version}")
        size = f.read(2 if version == (1, 0) else 4)   # the header's length, checked here:
        n = int.from_bytes(size, "little")            # numpy reads it all before checking
        if len(size) not in (2, 4) or n > _MAX_HEADER:
            raise _bad(path, f"member {info.filename!r} has a .npy header of {n} bytes")
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        try:
            shape, fortran, dtype = read(io.BytesIO(size + f.read(n)))
        except Exception as exc:                    # numpy's parser: ValueError, SyntaxError..
            raise _bad(path, f"member {info.filename!r} has a corrupt .npy header "
                             f"({type(exc).__name__}: {exc})") from None
        offset = f.tell()
    if dtype.hasobject or dtype.kind == "O":
        raise _bad(path, f"member {info.filename!r} holds pickled Python objects (an object "
                         "array), which fastnn never loads")
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in "biufU":
        raise _bad(path, f"member {info.filename!r} has unsupported dtype {dtype}")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise _bad(path, f"member {info.filename!r} declares a bad shape {shape}")
    m = _Member(info, dtype, tuple(shape), fortran, offset)
    if info.file_size != offset + m.nbytes:
        raise _bad(path, f"member {info.filename!r} declares shape {m.shape} of {dtype} "
                         f"({m.nbytes} bytes) but holds {info.file_size - offset} bytes "
                         "(truncated, or a zip bomb?)")
    return m


def _read_data(zf, m, path):
    """Read a member's data into a new array, a chunk at a time (no second copy)."""
    out = np.empty(m.count, m.dtype)
    view = memoryview(out.view(np.uint8))
    with zf.open(m.info) as f:
        f.seek(m.offset)
        pos = 0
        while pos < m.nbytes:
            chunk = f.read(min(_CHUNK, m.nbytes - pos))
            if not chunk:
                raise _bad(path, f"member {m.info.filename!r} ends early (truncated)")
            view[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
        if f.read(1):                               # also makes zipfile check the CRC
            raise _bad(path, f"member {m.info.filename!r} is longer than its header says")
    return out.reshape(m.shape[::-1]).T if m.fortran else out.reshape(m.shape)


def _check_meta(members, path):
    """Check the metadata members' headers: kinds, ranks, string lengths, total size."""
    total = 0
    for key, (kinds, ndim, chars) in _META.items():
        m = members.get(key)
        if m is not None and (m.dtype.kind not in kinds or len(m.shape) != ndim or
                              (chars and m.dtype.itemsize > 4 * chars)):
            raise _bad(path, f"field {key!r} has the wrong type ({m.dtype}, shape {m.shape})")
        total += m.nbytes if m is not None else 0
    if members["sizes"].count > MAX_LAYERS + 1:
        raise _bad(path, f"it declares too many layers (at most {MAX_LAYERS})")
    if total > META_BYTES:
        raise _bad(path, f"its metadata declares {total} bytes (at most {META_BYTES})")


def _architecture(meta, path):
    """Check the metadata's values; returns (sizes, activations, loss, dtype, n_params)."""
    if str(meta["format"]) != FORMAT:
        raise _bad(path, f"it has no {FORMAT!r} format tag (written by another program?)")
    version = int(meta["version"])
    if not 1 <= version <= VERSION:
        raise _bad(path, f"format version {version} is newer than this fastnn reads "
                         f"({VERSION}); upgrade fastnn" if version > VERSION else
                         f"bad format version {version}")
    sizes, acts = meta["sizes"], meta["activations"]
    if sizes.size < 2 or sizes.min() < 1:
        raise _bad(path, "bad layer sizes")
    if acts.shape != (sizes.size - 1,):
        raise _bad(path, "bad activation list")
    unknown = [a for a in acts.tolist() if a not in ACTIVATIONS]
    if unknown:
        raise _bad(path, f"unknown activations {unknown}")
    dtype = str(meta["dtype"])
    if dtype not in ("float32", "float64"):
        raise _bad(path, f"unsupported dtype {dtype!r}")
    loss = str(meta["loss"]) or None
    if loss is not None and (loss not in LOSSES or
                             LOSS_ACTIVATION[LOSSES[loss]] != ACTIVATIONS[acts[-1]]):
        raise _bad(path, f"loss {loss!r} does not fit the output activation {acts[-1]!r}")
    sizes = [int(v) for v in sizes]             # Python ints: no overflow on huge widths
    n = param_size(list(zip(sizes[1:], sizes[:-1])))
    return sizes, acts.tolist(), loss, dtype, n


def _check_payload(members, dtype, n, path):
    """Check theta's, the optimiser state's and the extras' headers against the architecture."""
    theta = members["theta"]
    if theta.dtype != np.dtype(dtype) or theta.shape != (n,):
        raise _bad(path, f"the parameter vector ({theta.dtype}, shape {theta.shape}) does not "
                         f"fit the architecture ({dtype}, shape ({n},))")
    present = [k for k in _OPT_KEYS if k in members]
    if present and len(present) != len(_OPT_KEYS):
        raise _bad(path, f"incomplete optimiser state: has {present}, needs {list(_OPT_KEYS)}")
    for key in ("opt_s1", "opt_s2"):
        if key in members and (members[key].dtype != theta.dtype or
                               members[key].shape not in ((0,), (n,))):
            raise _bad(path, "the optimiser state does not fit the parameters "
                             f"({key}: {members[key].dtype}, shape {members[key].shape})")
    extra_bytes = sum(m.nbytes for k, m in members.items() if k.startswith("extra/"))
    if extra_bytes > EXTRA_BYTES + theta.nbytes:
        raise _bad(path, f"its extra arrays declare {extra_bytes} bytes (at most "
                         f"{EXTRA_BYTES + theta.nbytes})")


def _verify(arrays, key, path):
    digest, mac = _hashes(arrays, key)
    if str(arrays["digest"]) != digest:
        raise _bad(path, "its contents do not match the stored digest (the file was modified "
                         "or damaged)")
    if key is not None:
        if "signature" not in arrays:
            raise _bad(path, "it has no signature, and a key was given (saved without a key?)")
        if not hmac.compare_digest(str(arrays["signature"]).encode(), mac.encode()):
            raise _bad(path, "its signature does not match the key (a wrong key, or a file "
                             "not written by its holder)")


def _optimizer(arrays, path):
    """The checked ``(code, step, s1, s2)``, or None."""
    if "opt_code" not in arrays:
        return None
    s1, s2 = arrays["opt_s1"], arrays["opt_s2"]
    code, step = int(arrays["opt_code"]), int(arrays["opt_t"])
    if code not in _N_STATE:
        raise _bad(path, f"unknown optimiser code {code}")
    n_state = _N_STATE[code]
    if (s1.size > 0) != (n_state >= 1) or (s2.size > 0) != (n_state >= 2):
        raise _bad(path, f"optimiser code {code} keeps {n_state} state vectors, the file "
                         f"holds {int(s1.size > 0) + int(s2.size > 0)}")
    if not 0 <= step < 2 ** 62:
        raise _bad(path, f"the optimiser step count {step} is out of range")
    if not (np.isfinite(s1).all() and np.isfinite(s2).all()):
        raise _bad(path, "the optimiser state contains NaN or infinity")
    return code, step, s1, s2


def _read_checked(f, path, key):
    archive_size = os.fstat(f.fileno()).st_size
    try:
        zf = zipfile.ZipFile(f)
    except Exception:               # BadZipFile, EOFError, OSError, struct.error, ...
        raise ModelFileError(f"{path!r} is not a fastnn model file: it is not an .npz archive "
                             "(truncated, or another kind of file)") from None
    with zf:
        infos = _directory(zf, path, archive_size)
        members = {k: _header(zf, info, path) for k, info in infos.items()}
        missing = [k for k in _REQUIRED if k not in members]
        if missing:
            raise _bad(path, f"missing fields {missing}")
        _check_meta(members, path)
        meta = {k: _read_data(zf, members[k], path) for k in _META if k in members}
        meta = {k: v[()] if v.shape == () else v for k, v in meta.items()}
        sizes, acts, loss, dtype, n = _architecture(meta, path)
        _check_payload(members, dtype, n, path)
        arrays = {k: meta[k] if k in meta else _read_data(zf, m, path)
                  for k, m in members.items()}
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    _verify(arrays, key, path)
    theta = arrays["theta"]
    if not np.isfinite(theta).all():
        raise _bad(path, "the parameters contain NaN or infinity")
    return {"sizes": sizes, "activations": acts, "loss": loss, "dtype": dtype, "theta": theta,
            "opt": _optimizer(arrays, path),
            "extra": {k[len("extra/"):]: v for k, v in arrays.items()
                      if k.startswith("extra/")}}


def read(path: Union[str, os.PathLike], *, key: Optional[bytes] = None
         ) -> Dict[str, Any]:
    """Read and check a file written by ``write``.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    key : bytes, optional
        Require an HMAC-SHA256 signature made with this key (``write(..., key=key)``).

    Returns
    -------
    dict
        ``sizes``, ``activations``, ``loss`` (str or None), ``dtype``, ``theta``, ``opt``
        (``(code, step, s1, s2)`` or None) and ``extra`` (dict of arrays).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ModelFileError
        (a ValueError) For a non-regular path; a truncated, modified, malformed or foreign
        file, or one from a newer fastnn; a missing or wrong signature when ``key`` is given.
    """
    key = None if key is None else _check_key(key)
    path = os.fspath(path)
    with _open_regular(path) as f:
        try:
            return _read_checked(f, path, key)
        except ModelFileError:
            raise
        except Exception as exc:        # BadZipFile, OSError, zlib.error, ...: all the file's
            raise _bad(path, f"{type(exc).__name__}: {exc}") from exc


def param_views(fields: Dict[str, Any]) -> list:
    """Per-layer ``(W, b)`` views into the ``theta`` of ``read``'s result."""
    sizes = fields["sizes"]
    return param_views_of(fields["theta"], list(zip(sizes[1:], sizes[:-1])))
