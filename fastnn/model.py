"""MLP: a stack of Dense layers that owns one flat parameter vector and its training buffers."""

import numpy as np

from . import _backend, _device, training
from .kernels.codes import (
    ACTIVATION_LOSS, ACTIVATION_NAMES, BCE, CROSS_ENTROPY, LOSS_ACTIVATION, LOSS_NAMES, MSE,
    H_LR, N_HYPER, NO_GRADIENT, OPT_SGD, OUTPUT_ONLY, SOFTMAX, activation_code, loss_code,
)
from .kernels.passes import allocate_outputs, batch_gradients, forward_pass
from ._validation import (
    all_finite, as_list, as_matrix, check_dtype, check_positive_float, check_seed, targets,
)
from .kernels.layout import param_size, param_views, work_views, workspace_size
from .layers import Dense

_INF = float("inf")
_STEP_HELPERS = {}


def _step_helpers(K):
    """The compiled checks ``train_step`` runs for host kernels ``K``, or None to use NumPy's.

    They live in the Cython extension and serve both compiled CPU backends (numba and cython);
    the NumPy reference backend keeps its pure-NumPy checks, as the baseline it is, and so does
    every backend when the extension was not built.
    """
    try:
        return _STEP_HELPERS[K]
    except KeyError:
        pass
    helpers = None
    if getattr(K, "__name__", None) in (_backend.MODULES["cython"], _backend.MODULES["numba"]):
        try:
            helpers = _backend.kernels("cython")
        except (ImportError, RuntimeError):  # the extension was not built
            helpers = None
    _STEP_HELPERS[K] = helpers
    return helpers


class MLP:
    """A multilayer perceptron: Dense layers trained with fused kernels.

    Parameters
    ----------
    layers : sequence of Dense
        Consecutive layers; widths must chain and dtypes agree. The model takes over their
        storage: each layer's W, b, dW, db become views into the model's flat vectors.
    loss : {"cross_entropy", "bce", "mse"}, optional
        Inferred from the last activation (softmax → cross_entropy, sigmoid → bce,
        identity → mse). Each loss is fused with its output activation, so an explicit loss must
        match it. A model whose output has no paired loss (step, relu, ...) is for inference only.

    Notes
    -----
    Threads: ``forward``, ``predict``, ``predict_proba``, ``loss`` and ``score`` only read the
    parameters and allocate their own outputs, so several threads may call them on one model at
    once (the compiled kernels release the GIL). ``fit``, ``train_step`` and ``gradients`` use the
    model's own buffers and update it in place: never run two of them on one model at once, and
    expect inference running beside them on the *same* model to see parameters mid-update.
    Different models are independent.
    """

    def __init__(self, layers, loss=None):
        layers = as_list(layers, "layers")
        if not layers:
            raise ValueError("an MLP needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise ValueError(f"layer {i} is {type(layer).__name__}, not Dense")
        for i in range(1, len(layers)):
            if layers[i].in_features != layers[i - 1].out_features:
                raise ValueError(
                    f"layer {i} expects {layers[i].in_features} inputs but layer {i - 1} "
                    f"gives {layers[i - 1].out_features}"
                )
            if layers[i].dtype != layers[0].dtype:
                raise ValueError(f"layer {i} has dtype {layers[i].dtype}, layer 0 has "
                                 f"{layers[0].dtype}; all layers must share one dtype")
        for i, layer in enumerate(layers[:-1]):
            if layer._act in OUTPUT_ONLY:
                raise ValueError(f"layer {i}: {layer.activation!r} is allowed on the output "
                                 "layer only")
        out_act = layers[-1]._act
        if loss is None:
            self._loss = ACTIVATION_LOSS.get(out_act)
        else:
            code = loss_code(loss)
            if LOSS_ACTIVATION[code] != out_act:
                raise ValueError(
                    f"loss {loss!r} is fused with a {ACTIVATION_NAMES[LOSS_ACTIVATION[code]]!r} "
                    f"output layer, but the last layer is {layers[-1].activation!r}"
                )
            self._loss = code
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same Dense object appears twice in layers")
        self.layers = layers
        self.dtype = layers[0].dtype
        dims = [(l.out_features, l.in_features) for l in layers]  # Python ints: the layout
        self._shapes = np.array(dims, np.int64)  # helpers loop over them ~3x faster than rows
        self._acts = np.array([l._act for l in layers], np.int64)
        self._theta = np.zeros(param_size(dims), dtype=self.dtype)
        self._grad = np.zeros_like(self._theta)
        for layer, (W, b), (dW, db) in zip(layers, param_views(self._theta, dims),
                                           param_views(self._grad, dims)):
            layer._bind(W, b, dW, db)
        self._reset_scratch()
        self.reset_optimizer()

    @classmethod
    def from_sizes(cls, sizes, hidden="relu", output="softmax", dtype=np.float32, seed=None):
        """Build an MLP from layer widths, e.g. ``[784, 256, 10]``.

        Parameters
        ----------
        sizes : sequence of int
            Input width, then each layer's width (at least two entries).
        hidden, output : str
            Activations of the hidden layers and of the output layer.
        dtype : {np.float32, np.float64}
        seed : int, optional
            Seed of ``np.random.default_rng``; the same seed gives the same model.
        """
        sizes = as_list(sizes, "sizes")
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input width and at least one layer, got {sizes}")
        activation_code(hidden)
        activation_code(output)
        dtype = check_dtype(dtype)
        rng = np.random.default_rng(check_seed(seed))
        acts = [hidden] * (len(sizes) - 2) + [output]
        return cls([Dense(i, o, a, dtype=dtype, seed=rng)
                    for i, o, a in zip(sizes[:-1], sizes[1:], acts)])

    # description ------------------------------------------------------------------------
    @property
    def sizes(self):
        """Input width followed by each layer's width."""
        return [self.layers[0].in_features] + [l.out_features for l in self.layers]

    @property
    def loss_name(self):
        """The training loss, or None for an inference-only model."""
        return None if self._loss is None else LOSS_NAMES[self._loss]

    @property
    def n_params(self):
        return self._theta.size

    def __repr__(self):
        inner = ", ".join(repr(l) for l in self.layers)
        return f"MLP([{inner}], loss={self.loss_name!r})"

    # checks -----------------------------------------------------------------------------
    def _check_X(self, X):
        return as_matrix(X, self.dtype, self.layers[0].in_features)

    def _check_trainable(self):
        if self._trainable:  # decided once (_reset_scratch): train_step calls this every step
            return
        for i, layer in enumerate(self.layers):
            if layer._act in NO_GRADIENT:
                raise ValueError(f"cannot train through layer {i}: 'step' has no useful "
                                 "gradient (use it for inference only)")
        if self._loss is None:
            raise ValueError(
                f"the output activation {self.layers[-1].activation!r} has no paired loss; "
                "train with identity (mse), sigmoid (bce) or softmax (cross_entropy) outputs"
            )

    def _targets(self, y, n):
        return targets(y, self._loss, n, self.layers[-1].out_features, self.dtype)

    def _params(self):
        return [(l._W, l._b) for l in self.layers]

    # The backend this model runs on: None follows fastnn.get_backend(); a name pins it (the
    # scikit-learn estimators' ``backend`` parameter uses this, so they never change the global).
    backend = None
    # The DeviceMirror of a model trained on a device backend (fastnn._device); None until then.
    _mirror = None

    def _kernels(self):
        return _backend.kernels(self.backend)

    # inference --------------------------------------------------------------------------
    def forward(self, X):
        """The output layer's activations for X (n, in). Safe to call from several threads.

        With the cuda backend X may be a GPU array (``__cuda_array_interface__``); the result is
        then a numba device array, and a NumPy array for host input.
        """
        K = self._kernels()
        if _device.on_device(K):
            return self._forward_device(K, X)
        _device.sync_host(self)
        X = self._check_X(X)
        outs = allocate_outputs(X.shape[0], self._params(), self.dtype)
        return forward_pass(K, X, self._params(), self._acts, outs, False)

    def _forward_device(self, K, X):
        m = _device.mirror(self, K)
        X, given_on_device = _device.as_input(K, X, self.dtype, self.layers[0].in_features)
        params = param_views(m.theta, self._shapes)
        outs = [K.device_zeros((X.shape[0], W.shape[0]), self.dtype) for W, _ in params]
        A = forward_pass(K, X, params, self._acts, outs, False)
        return A if given_on_device else K.to_host(A)

    def _forward_host(self, X):
        A = self.forward(X)
        return A if isinstance(A, np.ndarray) else self._kernels().to_host(A)

    def predict_proba(self, X):
        """Class probabilities: softmax outputs, or (1 - p, p) for one sigmoid output."""
        out_act = self._acts[-1]
        if out_act not in (SOFTMAX, activation_code("sigmoid")):
            raise ValueError("predict_proba needs a softmax or sigmoid output layer, not "
                             f"{self.layers[-1].activation!r}")
        A = self._forward_host(X)
        if out_act != SOFTMAX and A.shape[1] == 1:
            return np.hstack([1 - A, A])
        return A

    def predict(self, X):
        """Labels for softmax, 0/1 for sigmoid, values for identity and step (1-D if one output)."""
        A = self._forward_host(X)
        out_act = self._acts[-1]
        if out_act == SOFTMAX:
            return A.argmax(axis=1)
        if self._loss == BCE:
            A = (A >= 0.5).astype(np.int64)
        return A[:, 0] if A.shape[1] == 1 else A

    def loss(self, X, y):
        """Mean loss of the model on (X, y), from the logits (never overflows).

        Safe to call from several threads.
        """
        self._check_loss()
        _device.sync_host(self)
        X = self._check_X(X)
        Y = self._targets(y, X.shape[0])
        outs = allocate_outputs(X.shape[0], self._params(), self.dtype)
        K = self._kernels()
        Z = forward_pass(K, X, self._params(), self._acts, outs, logits=True)
        return float(K.output_step(Z, Y, self._loss, np.empty_like(Z), None))

    def _sync(self):
        """Bring the host parameter arrays up to date with the device copy (cuda backend)."""
        _device.sync_host(self)

    def _check_loss(self):
        if self._loss is None:
            raise ValueError(f"the output activation {self.layers[-1].activation!r} has no "
                             "paired loss")

    def score(self, X, y):
        """Accuracy for classifiers (softmax/sigmoid); R² for regression (identity).

        ``y`` is checked like the targets of ``loss`` (ValueError for bad values or shapes).
        """
        pred = self.predict(X)  # checks X
        n, k = pred.shape[0], self.layers[-1].out_features
        if self._loss in (CROSS_ENTROPY, BCE):
            Y = self._targets(y, n)
            truth = Y.argmax(axis=1) if self._loss == CROSS_ENTROPY else Y.reshape(pred.shape)
            return float(np.mean(pred == truth))
        y = targets(y, MSE, n, k, np.float64).reshape(pred.shape)
        pred = pred.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            ss = ((y - pred) ** 2).sum()
            st = ((y - y.mean(axis=0)) ** 2).sum()
        return float(1 - ss / st) if st > 0 else 0.0

    # training ---------------------------------------------------------------------------
    _SCRATCH = ("_work", "_theta_keep", "_onehot")

    def _reset_scratch(self):
        """(Re)create the scratch buffers training reuses; they are never pickled."""
        self._work = np.zeros(0, dtype=self.dtype)
        self._work_per_row = workspace_size(self._shapes, 1)  # linear in the batch size
        self._theta_keep = np.empty_like(self._theta)
        self._n_in, self._n_out = int(self._shapes[0, 1]), int(self._shapes[-1, 0])
        self._trainable = self._loss is not None and not any(
            int(a) in NO_GRADIENT for a in self._acts)
        self._onehot = np.zeros((0, self._n_out), dtype=self.dtype)  # train_step's targets

    def _workspace(self, batch):
        need = batch * self._work_per_row
        if self._work.size < need:
            self._work = np.zeros(need, dtype=self.dtype)
        return self._work

    def gradients(self, X, y):
        """Per-layer ``(dW, db)`` of the mean loss on (X, y), as copies; the model is not updated.

        Uses the model's scratch buffers: not safe beside another training call on this model.
        """
        self._check_trainable()
        _device.sync_host(self)
        X = self._check_X(X)
        Y = self._targets(y, X.shape[0])
        n = X.shape[0]
        work = self._workspace(n)
        _, _, _, As, D0, D1 = work_views(work, self._shapes, n, n)
        grads = param_views(np.zeros_like(self._theta), self._shapes)
        batch_gradients(self._kernels(), X, Y, None, self._params(), grads, self._acts,
                        self._loss, As, D0, D1)
        return grads

    def train_step(self, X, y, lr):
        """One plain SGD step on the batch (X, y); returns the loss before the update.

        Raises FloatingPointError, leaving the model unchanged, if the loss or gradient is not
        finite or the update overflows the parameters. Not thread-safe on one model.
        """
        if type(lr) is not float or not 0.0 < lr < _INF:  # a plain float skips the slow check
            lr = check_positive_float(lr, "lr")
        self._check_trainable()
        K = self._kernels()
        fast = _step_helpers(K)  # None for numpy and cuda (or without the Cython extension)
        if fast is None and _device.on_device(K):
            return self._train_step_device(K, X, y, lr)
        # Host path, kept lean: at batch 32 the Python around the kernel can cost as much as it.
        _device.sync_host(self)
        n = 0
        if fast is not None and self._loss == CROSS_ENTROPY:
            Y = self._onehot
            n = fast.step_inputs(X, y, Y, self._n_in)
            if n < 0:  # a larger batch than before: grow the one-hot buffer
                Y = self._onehot = np.zeros((-n, self._n_out), dtype=self.dtype)
                n = fast.step_inputs(X, y, Y, self._n_in)
            if n:
                Y = Y[:n] if n < Y.shape[0] else Y
        if not n:  # anything else: the NumPy checks (they raise the ValueErrors)
            X = self._check_X(X)
            n = X.shape[0]
            Y = self._step_targets(y, n)
        hyper = self._step_hyper
        hyper[H_LR] = lr
        # The kernels stop before an update whose loss or gradient is not finite, but a finite
        # gradient times a huge lr can still overflow the parameters: keep a copy to restore.
        theta, keep = self._theta, self._theta_keep
        if fast is None:
            np.copyto(keep, theta)
        else:
            fast.copy_into(keep, theta)
        loss_sum, done = K.train_epoch(
            X, Y, None, None, theta, self._grad, self._shapes, self._acts, self._loss, n,
            OPT_SGD, hyper, self._no_state, self._no_state, 0, self._workspace(n))
        if done == 0:
            raise FloatingPointError("train_step: the loss or gradient is not finite; the model "
                                     "was not updated")
        if not (all_finite(theta) if fast is None else fast.all_finite(theta)):
            np.copyto(theta, keep)
            raise FloatingPointError("train_step: the update overflowed the parameters (try a "
                                     "smaller learning rate); the model was not updated")
        return loss_sum / n

    def _train_step_device(self, K, X, y, lr):
        """train_step on a device backend: the model's device copies, X and y uploaded once."""
        _, X, Y, theta, grad, work_for, state_for, trained = _device.fit_arrays(self, K, X, y)
        n = X.shape[0]
        hyper = self._step_hyper
        hyper[H_LR] = lr
        none = state_for(self._no_state)
        loss_sum, done = K.train_epoch(
            X, Y, None, None, theta, grad, self._shapes, self._acts, self._loss, n,
            OPT_SGD, hyper, none, none, 0, work_for(n))
        trained()
        if done == 0:
            raise FloatingPointError("train_step: the loss or gradient is not finite; the model "
                                     "was not updated")
        return loss_sum / n

    def _step_targets(self, y, n):
        """Targets for train_step: integer class labels go into the reused one-hot buffer.

        Anything else (and any label out of range, for its error message) takes ``_targets``.
        """
        if (self._loss == CROSS_ENTROPY and isinstance(y, np.ndarray) and y.ndim == 1
                and y.dtype.kind in "iu" and y.shape[0] == n):
            k = self._n_out
            if 0 <= y.min() and y.max() < k:
                if self._onehot.shape[0] < n:
                    self._onehot = np.zeros((n, k), dtype=self.dtype)
                Y = self._onehot[:n]
                Y.fill(0)
                Y[np.arange(n), y] = 1
                return Y
        return self._targets(y, n)

    def reset_optimizer(self):
        """Forget optimiser state (momentum velocity, Adam moments and step count)."""
        self._opt_code = None
        self._opt_t = 0
        self._s1 = self._s2 = self._no_state = np.zeros(0, dtype=self.dtype)
        self._step_hyper = np.zeros(N_HYPER)

    def _optimizer_state(self, opt):
        """State vectors for optimiser ``opt``; kept across fit calls while its kind is unchanged."""
        if self._opt_code != opt.code:
            self._opt_code = opt.code
            self._opt_t = 0
            self._s1 = np.zeros_like(self._theta) if opt.n_state >= 1 else self._no_state
            self._s2 = np.zeros_like(self._theta) if opt.n_state >= 2 else self._no_state
        return self._s1, self._s2

    def fit(self, X, y, epochs=10, batch_size=32, lr=0.01, optimizer="sgd", shuffle=True,
            seed=None, progress=True, **kwargs):
        """Train on (X, y); returns a History. See ``fastnn.training.fit`` for every option."""
        return training.fit(self, X, y, epochs=epochs, batch_size=batch_size, lr=lr,
                            optimizer=optimizer, shuffle=shuffle, seed=seed, progress=progress,
                            **kwargs)

    def save(self, path, *, optimizer_state=True, extra=None):
        """Write the model to a versioned ``.npz`` file; see ``fastnn.io.save``."""
        from .io import save

        save(self, path, optimizer_state=optimizer_state, extra=extra)

    # pickling keeps the layers bound to the flat vectors ---------------------------------
    def __getstate__(self):
        _device.sync_host(self)
        state = self.__dict__.copy()
        state.pop("_mirror", None)
        state["layers"] = [(l.in_features, l.out_features, l.activation) for l in self.layers]
        state.pop("_grad")
        for name in self._SCRATCH:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        specs = state.pop("layers")
        self.__dict__.update(state)
        self._grad = np.zeros_like(self._theta)
        self._reset_scratch()
        self.layers = []
        for (i, o, a), (W, b), (dW, db) in zip(specs, param_views(self._theta, self._shapes),
                                               param_views(self._grad, self._shapes)):
            layer = Dense.__new__(Dense)
            layer._act, layer.dtype, layer._cache = activation_code(a), self.dtype, None
            layer._W, layer._b, layer._dW, layer._db = W, b, dW, db
            self.layers.append(layer)
