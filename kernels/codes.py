"""The one table of integer codes that activations, losses and optimisers take in compiled code.

Kernels never see strings: the API layer maps names to these codes once, at the boundary.
"""

# Activations. Order is part of the kernel contract: every backend switches on these values.
IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
SOFTPLUS = 4
STEP = 5
SOFTMAX = 6

ACTIVATIONS = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "softplus": SOFTPLUS,
    "step": STEP,
    "softmax": SOFTMAX,
}
ACTIVATION_NAMES = {code: name for name, code in ACTIVATIONS.items()}

# Activations that take no gradient (training through them raises ValueError).
NO_GRADIENT = frozenset({STEP})
# Activations allowed only on the output layer.
OUTPUT_ONLY = frozenset({SOFTMAX})

# Losses: each is fused with one output activation so that dZ = (A - Y) / N.
MSE = 0
BCE = 1
CROSS_ENTROPY = 2

LOSSES = {"mse": MSE, "bce": BCE, "cross_entropy": CROSS_ENTROPY}
LOSS_NAMES = {code: name for name, code in LOSSES.items()}

# The output activation that each loss is paired with.
LOSS_ACTIVATION = {MSE: IDENTITY, BCE: SIGMOID, CROSS_ENTROPY: SOFTMAX}
# The loss inferred from a model's last activation.
ACTIVATION_LOSS = {IDENTITY: MSE, SIGMOID: BCE, SOFTMAX: CROSS_ENTROPY}

# Optimisers as the compiled update kernels and epoch loops see them.
OPT_SGD = 0
OPT_MOMENTUM = 1
OPT_NESTEROV = 2
OPT_ADAM = 3

# Layout of the float64 hyper-parameter vector passed to train_epoch.
H_LR, H_L2, H_MOMENTUM, H_BETA1, H_BETA2, H_EPS = range(6)
N_HYPER = 6


def activation_code(name):
    """Return the code for an activation name, or raise ValueError naming the valid ones."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None


def loss_code(name):
    """Return the code for a loss name, or raise ValueError naming the valid ones."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None
