"""MLP: a stack of Dense layers whose numbers live in one ParamStore."""

import numpy as np

from . import _backend, _format, training
from ._device import as_input
from ._params import ParamStore
from ._spec import ModelSpec
from ._trainer import Diverged, trainer_for
from ._validation import (
    all_finite, as_list, as_matrix, check_dtype, check_positive_float, check_seed, check_trainable,
    compiled_checks, targets,
)
from .kernels.codes import (
    ACTIVATION_LOSS, ACTIVATION_NAMES, BCE, CROSS_ENTROPY, LOSS_ACTIVATION,
    LOSS_NAMES, MSE, OPT_SGD, OUTPUT_ONLY, SIGMOID, SOFTMAX, activation_code, loss_code,
)
from .kernels.layout import work_views
from .kernels.passes import batch_gradients, forward_pass
from .layers import Dense
from .optim import Optimizer, get_optimizer

_INF = float("inf")
_REQUIRED = object()  # train_step's lr when none was given


class MLP:
    """A multilayer perceptron: Dense layers trained with fused kernels.

    Parameters
    ----------
    layers : sequence of Dense
        Consecutive layers; widths must chain and dtypes agree. The model takes over their
        storage: each layer's W, b, dW, db become views into the model's ``store``.
    loss : {"cross_entropy", "bce", "mse"}, optional
        Inferred from the last activation (softmax → cross_entropy, sigmoid → bce,
        identity → mse). Each loss is fused with its output activation, so an explicit loss must
        match it. A model whose output has no paired loss (step, relu, ...) is for inference only.

    Attributes
    ----------
    layers : list of Dense
    store : fastnn._params.ParamStore
        The flat parameter, gradient and optimiser-state vectors (per-layer views in ``layers``).
    spec : fastnn._spec.ModelSpec
        The widths, activation and loss codes and dtype, as the kernels take them.
    backend : str or None
        The backend this model runs on: None follows ``fastnn.get_backend()``; a name pins it
        (the scikit-learn estimators' ``backend`` parameter uses this).

    Notes
    -----
    Threads: ``forward``, ``predict``, ``predict_proba``, ``loss`` and ``score`` only read the
    parameters and allocate their own outputs, so several threads may call them on one model at
    once (the compiled kernels release the GIL). ``fit``, ``train_step`` and ``gradients`` use the
    model's own buffers and update it in place: never run two of them on one model at once, and
    expect inference running beside them on the *same* model to see parameters mid-update.
    Different models are independent.
    """

    backend = None

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
            if layer.activation_code in OUTPUT_ONLY:
                raise ValueError(f"layer {i}: {layer.activation!r} is allowed on the output "
                                 "layer only")
        out_act = layers[-1].activation_code
        if loss is None:
            code = ACTIVATION_LOSS.get(out_act)
        else:
            code = loss_code(loss)
            if LOSS_ACTIVATION[code] != out_act:
                raise ValueError(
                    f"loss {loss!r} is fused with a {ACTIVATION_NAMES[LOSS_ACTIVATION[code]]!r} "
                    f"output layer, but the last layer is {layers[-1].activation!r}"
                )
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same Dense object appears twice in layers")
        dims = [(l.out_features, l.in_features) for l in layers]
        self.spec = ModelSpec.of(dims, [l.activation_code for l in layers], code,
                                 layers[0].dtype)
        self.store = ParamStore(self.spec.shapes, self.spec.dtype)
        for i, layer in enumerate(layers):
            layer.attach(self.store, i)
        self._layers = tuple(layers)
        self._trainable = self.spec.untrainable_reason() is None
        self._onehot = np.zeros((0, self.spec.n_out), dtype=self.dtype)  # train_step's targets

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

    @classmethod
    def load(cls, path, *, extra=False, key=None):
        """Read a model written by ``save``; see ``fastnn.load``."""
        f = _format.read(path, key=key)
        layers = [Dense.from_weights(np.array(W), np.array(b), a) for (W, b), a in
                  zip(_format.param_views(f), f["activations"])]
        model = cls(layers, loss=f["loss"])
        if f["opt"] is not None:
            model.store.set_optimizer_state(*f["opt"])
        return (model, f["extra"]) if extra else model

    # description ------------------------------------------------------------------------
    @property
    def layers(self):
        """The Dense layers, input side first (a tuple: the architecture is fixed once built)."""
        return self._layers

    @property
    def dtype(self):
        """The dtype of every parameter (float32 or float64), fixed once built."""
        return self.spec.dtype

    @property
    def sizes(self):
        """Input width followed by each layer's width."""
        return self.spec.sizes

    @property
    def loss_name(self):
        """The training loss, or None for an inference-only model."""
        return None if self.spec.loss is None else LOSS_NAMES[self.spec.loss]

    @property
    def n_params(self):
        return self.store.size

    def __repr__(self):
        inner = ", ".join(repr(l) for l in self.layers)
        return f"MLP([{inner}], loss={self.loss_name!r})"

    def _kernels(self):
        return _backend.kernels(self.backend)

    # inference --------------------------------------------------------------------------
    def forward(self, X):
        """The output layer's activations for X (n, in). Safe to call from several threads.

        The raw numbers: where a layer overflows they hold inf or NaN. ``predict``,
        ``predict_proba``, ``score`` and ``loss`` raise FloatingPointError there instead.

        With the cuda backend X may be a GPU array (``__cuda_array_interface__``); the result is
        then a numba device array, and a NumPy array for host input.
        """
        K = self._kernels()
        spec = self.spec
        X, on_device = as_input(K, X, spec.dtype, spec.n_in)
        params = self.store.views(self.store.arrays(K)[0])
        outs = [K.zeros((X.shape[0], W.shape[0]), spec.dtype) for W, _ in params]
        A = forward_pass(K, X, params, spec.acts, outs, False)
        return A if on_device else K.to_host(A)

    def _forward_host(self, X):
        """``forward`` on the host, for predictions: FloatingPointError rather than NaN."""
        A = self.forward(X)
        A = A if isinstance(A, np.ndarray) else self._kernels().to_host(A)
        if not all_finite(A):
            raise _overflowed("the model's output", "X", self.dtype)
        return A

    def predict_proba(self, X):
        """Class probabilities: softmax outputs, or (1 - p, p) for one sigmoid output."""
        out_act = self.spec.acts[-1]
        if out_act not in (SOFTMAX, SIGMOID):
            raise ValueError("predict_proba needs a softmax or sigmoid output layer, not "
                             f"{self.layers[-1].activation!r}")
        A = self._forward_host(X)
        if out_act != SOFTMAX and A.shape[1] == 1:
            return np.hstack([1 - A, A])
        return A

    def predict(self, X):
        """Labels for softmax, 0/1 for sigmoid, values for identity and step (1-D if one output)."""
        A = self._forward_host(X)
        if self.spec.acts[-1] == SOFTMAX:
            return A.argmax(axis=1)
        if self.spec.loss == BCE:
            A = (A >= 0.5).astype(np.int64)
        return A[:, 0] if A.shape[1] == 1 else A

    def loss(self, X, y):
        """Mean loss of the model on (X, y), from the logits (inf only when the true loss
        exceeds the dtype's range).

        FloatingPointError when a layer overflowed. Safe to call from several threads.
        """
        spec = self._checked_loss()
        K = self._kernels()
        X = as_input(K, X, spec.dtype, spec.n_in)[0]
        y = K.to_host(y) if K.ON_DEVICE and K.is_device_array(y) else y
        Y = K.to_backend(targets(y, spec.loss, X.shape[0], spec.n_out, spec.dtype))
        params = self.store.views(self.store.arrays(K)[0])
        outs = [K.zeros((X.shape[0], W.shape[0]), spec.dtype) for W, _ in params]
        Z = forward_pass(K, X, params, spec.acts, outs, logits=True)
        if not K.all_finite(Z):  # NaN, not a number to report (finite logits may give inf)
            raise _overflowed("the loss", "(X, y)", spec.dtype)
        return float(K.output_step(Z, Y, spec.loss, K.zeros(Z.shape, spec.dtype), None))

    def _checked_loss(self):
        if self.spec.loss is None:
            raise ValueError(f"the output activation {self.layers[-1].activation!r} has no "
                             "paired loss")
        return self.spec

    def score(self, X, y):
        """Accuracy for classifiers (softmax/sigmoid); R² for regression (identity).

        ``y`` is checked like the targets of ``loss`` (ValueError for bad values or shapes).
        """
        pred = self.predict(X)  # checks X
        n, k, loss = pred.shape[0], self.spec.n_out, self.spec.loss
        if loss in (CROSS_ENTROPY, BCE):
            Y = targets(y, loss, n, k, self.dtype)
            truth = Y.argmax(axis=1) if loss == CROSS_ENTROPY else Y.reshape(pred.shape)
            return float(np.mean(pred == truth))
        y = targets(y, MSE, n, k, np.float64).reshape(pred.shape)
        pred = pred.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            ss = ((y - pred) ** 2).sum()
            st = ((y - y.mean(axis=0)) ** 2).sum()
        return float(1 - ss / st) if st > 0 else 0.0

    # training ---------------------------------------------------------------------------
    def gradients(self, X, y):
        """Per-layer ``(dW, db)`` of the mean loss on (X, y), as copies; the model is not updated.

        Uses the model's scratch buffers: not safe beside another training call on this model.
        """
        spec = self.spec
        if not self._trainable:
            check_trainable(spec)
        K = self._kernels()
        X = as_input(K, X, spec.dtype, spec.n_in)[0]
        y = K.to_host(y) if K.ON_DEVICE and K.is_device_array(y) else y
        n = X.shape[0]
        Y = K.to_backend(targets(y, spec.loss, n, spec.n_out, spec.dtype))
        store = self.store
        theta = store.arrays(K)[0]
        grad = K.zeros(store.size, spec.dtype)
        _, _, _, As, D0, D1 = work_views(store.workspace(K, n), spec.shapes, n, n)
        batch_gradients(K, X, Y, None, store.views(theta), store.views(grad), spec.acts,
                        spec.loss, As, D0, D1)
        return store.views(K.to_host(grad))

    def train_step(self, X, y, lr=_REQUIRED, *, optimizer="sgd"):
        """One optimiser step on the batch (X, y); returns the loss before the update.

        Parameters
        ----------
        X, y : array_like
            One batch, as for ``fit``.
        lr : float
            The learning rate of a named optimizer (required with one); an Optimizer instance
            steps at its own current rate when ``lr`` is not given.
        optimizer : {"sgd", "momentum", "nesterov", "adam"} or fastnn.optim.Optimizer
            As in ``fit``. Its state (velocity, moments, step count) lives in the model's store
            and carries over between calls, and to and from ``fit``, while its kind is the same.

        Raises FloatingPointError, leaving the model unchanged, if the loss or gradient is not
        finite or the update overflows the parameters or optimiser state. Not thread-safe on one
        model.
        """
        if type(optimizer) is str and optimizer == "sgd":  # the common case, kept lean
            if type(lr) is not float or not 0.0 < lr < _INF:
                if lr is _REQUIRED:
                    raise ValueError("train_step needs lr, the learning rate of plain SGD (or "
                                     "an Optimizer instance as optimizer)")
                lr = check_positive_float(lr, "lr")
            opt = None
        elif isinstance(optimizer, Optimizer):
            if lr is not _REQUIRED:
                raise ValueError(f"train_step got lr={lr!r} and an optimizer instance, which "
                                 f"steps at its own rate ({optimizer.learning_rate!r}): pass one")
            opt = optimizer
        else:
            if lr is _REQUIRED:
                raise ValueError(f"train_step needs lr with a named optimizer ({optimizer!r})")
            opt = get_optimizer(optimizer, lr)
        if not self._trainable:
            check_trainable(self.spec)
        K = _backend.kernels(self.backend)
        X, Y, n = self._step_batch(K, X, y)
        if opt is None or opt.n_state == 0:  # plain SGD: no state, the store's is left alone
            trainer = trainer_for(self, K, OPT_SGD, 0, stateless=True)
            trainer.set_sgd_rate(lr if opt is None else opt.learning_rate)
        else:
            trainer = trainer_for(self, K, opt.code, opt.n_state)
            trainer.set_hyper(opt.hyper())
        try:
            loss_sum, _ = trainer.run(X, Y, None, None, n, self.store.workspace(K, n), 1)
        except Diverged as exc:
            raise FloatingPointError(
                "train_step: the update overflowed the parameters or the optimiser state (try "
                "a smaller learning rate or L2 penalty); the model was not updated"
                if exc.overflow else
                "train_step: the loss or gradient is not finite; the model was not updated"
            ) from None
        return loss_sum / n

    def _step_batch(self, K, X, y):
        """``(X, Y, n)`` for train_step: checked, in ``K``'s memory, targets dense.

        Integer class labels go one-hot into a reused buffer; a compiled backend checks the
        common case (finite C-contiguous X, int labels in range) in one compiled pass.
        """
        spec = self.spec
        if K.ON_DEVICE:
            X = as_input(K, X, spec.dtype, spec.n_in)[0]
            y = K.to_host(y) if K.is_device_array(y) else y
            return X, K.to_backend(targets(y, spec.loss, X.shape[0], spec.n_out,
                                           spec.dtype)), X.shape[0]
        checks = compiled_checks(K)
        if checks is not None and spec.loss == CROSS_ENTROPY:
            check = checks.step_inputs
            Y = self._onehot
            n = check(X, y, Y, spec.n_in)
            if n < 0:  # a larger batch than before: grow the one-hot buffer
                Y = self._onehot = np.zeros((-n, spec.n_out), dtype=spec.dtype)
                n = check(X, y, Y, spec.n_in)
            if n:
                return X, (Y[:n] if n < Y.shape[0] else Y), n
        X = as_matrix(X, spec.dtype, spec.n_in)  # anything else: the NumPy checks (and errors)
        n = X.shape[0]
        return X, self._step_targets(y, n), n

    def _step_targets(self, y, n):
        """Integer class labels one-hot in the reused buffer; anything else through ``targets``
        (which also words the error for a label out of range)."""
        spec = self.spec
        if (spec.loss == CROSS_ENTROPY and isinstance(y, np.ndarray) and y.ndim == 1
                and y.dtype.kind in "iu" and y.shape[0] == n):
            k = spec.n_out
            if 0 <= y.min() and y.max() < k:
                if self._onehot.shape[0] < n:
                    self._onehot = np.zeros((n, k), dtype=self.dtype)
                Y = self._onehot[:n]
                Y.fill(0)
                Y[np.arange(n), y] = 1
                return Y
        return targets(y, spec.loss, n, spec.n_out, spec.dtype)

    def reset_optimizer(self):
        """Forget optimiser state (momentum velocity, Adam moments and step count)."""
        self.store.reset_optimizer()

    def fit(self, X, y, epochs=10, batch_size=32, lr=0.01, optimizer="sgd", shuffle=True,
            seed=None, progress=True, **kwargs):
        """Train on (X, y); returns a History. See ``fastnn.training.fit`` for every option."""
        return training.fit(self, X, y, epochs=epochs, batch_size=batch_size, lr=lr,
                            optimizer=optimizer, shuffle=shuffle, seed=seed, progress=progress,
                            **kwargs)

    def save(self, path, *, optimizer_state=True, extra=None, key=None):
        """Write the model to a versioned ``.npz`` file (never a pickle); see ``fastnn.io.save``."""
        store = self.store
        opt = None
        if optimizer_state and store.opt_code is not None:
            opt = (store.opt_code, store.step, store.s1, store.s2)
        _format.write(path, sizes=self.sizes, activations=[l.activation for l in self.layers],
                      loss=self.loss_name, theta=store.theta, opt=opt, extra=extra, key=key)

    # pickling: the store, and the layers rebuilt as views into it -------------------------
    def __getstate__(self):
        return {"activations": [l.activation for l in self.layers], "loss": self.loss_name,
                "store": self.store, "backend": self.backend}

    def __setstate__(self, state):
        if "store" not in state:  # pickled by fastnn 0.1.0, before the store
            state = _state_of_0_1(state)
        store = state["store"]
        layers = [Dense.from_weights(np.array(W), np.array(b), a) for (W, b), a in
                  zip(store.views(store.theta), state["activations"])]
        self.__init__(layers, loss=state["loss"])
        if store.opt_code is not None:
            self.store.set_optimizer_state(store.opt_code, store.step, store.s1, store.s2)
        if state["backend"] is not None:
            self.backend = state["backend"]


def _overflowed(what, inputs, dtype):
    """The FloatingPointError for a layer that overflowed ``dtype`` on ``inputs``."""
    return FloatingPointError(f"{what} is not finite for this {inputs}: a layer overflowed "
                              f"{dtype} (inputs or weights too large?)")


def _state_of_0_1(old):
    """``MLP.__getstate__``'s dict from a pickle of fastnn 0.1.0 (flat ``_theta``, ``_opt_*``)."""
    specs, theta = old["layers"], np.asarray(old["_theta"])
    store = ParamStore(np.array([(o, i) for i, o, _ in specs], np.int64), theta.dtype)
    store.theta[...] = theta
    if old.get("_opt_code") is not None:
        store.set_optimizer_state(old["_opt_code"], old["_opt_t"], old["_s1"], old["_s2"])
    loss = old.get("_loss")
    return {"activations": [a for _, _, a in specs], "store": store,
            "loss": None if loss is None else LOSS_NAMES[loss], "backend": old.get("backend")}
