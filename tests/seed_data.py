"""Numbers taken from the lecture notes in ``shared/seeds/`` and their independent derivations.

Nothing here imports fastnn. The reference computations are written out element by element
from the seeds' scalar formulas with ``math.exp`` / ``math.log`` on Python floats, so they share
no code (and no matrix formulation) with the library under test.

Seeds used:
- 000 (Lecture 23, section 4 "Backpropagation Example: 2-Layer NN"): a 2-2-1 sigmoid network,
  binary cross-entropy, eta = 0.5, three SGD steps on the single training example
  x = (1, 2), y = 1 (the same example is used in every iteration).
- 001 (Forward/backward propagation slides): logistic regression forward values from a PyTorch
  demo (x = (-8, 1, -3, 5, 2), W, b printed to 4 decimals) and the gradient formulas
  dL/dz = y_hat - y, dL/dw = (y_hat - y) x^T, dL/db = y_hat - y, batch form dL/dZ = (A - Y) / N.
- 003 (Rangan, Neural Network Notes with Solved Problems, problems 1-3): hard-threshold networks.
"""

import math

# ------------------------------------------------------------------------------------------
# Seed 000, section 4
# ------------------------------------------------------------------------------------------
# The seed writes a^(1) = W^(1) x + b^(1) with W^(1) = [[0.1, 0.4], [0.2, 0.5]] and gets
# a^(1) = [0.1*1 + 0.4*2 + 0.3, 0.2*1 + 0.5*2 + 0.6] = [1.2, 1.8], so the rows of its W^(1) are
# the hidden units: exactly fastnn's (out, in) layout. W^(2) = [0.7, 0.8] is one output unit,
# i.e. a (1, 2) matrix in fastnn's layout.
S000_W1 = [[0.1, 0.4], [0.2, 0.5]]
S000_B1 = [0.3, 0.6]
S000_W2 = [[0.7, 0.8]]
S000_B2 = [0.9]
S000_X = [1.0, 2.0]
S000_Y = 1.0
S000_ETA = 0.5
S000_STEPS = 3

# The seed's printed figures, per iteration. "yhat"/"loss" are the forward values of that
# iteration (before its update); W1/b1/W2/b2 are the parameters AFTER that iteration's update.
S000_PRINTED = {
    1: dict(a1=[1.2, 1.8], u=[0.7685, 0.8581], z=2.1244, yhat=0.8934, loss=0.1122,
            dW2=[-0.08196, -0.09153], db2=-0.1067,
            dW1=[[-0.01328, -0.02656], [-0.01038, -0.02076]], db1=[-0.01328, -0.01038],
            W2=[[0.7410, 0.8458]], b2=[0.9534],
            W1=[[0.1066, 0.4133], [0.2052, 0.5104]], b1=[0.3066, 0.6052]),
    2: dict(a1=[1.2398, 1.8312], u=[0.7757, 0.8618], z=2.1885, yhat=0.8993, loss=0.1061,
            dW2=[-0.0749, -0.0832], db2=-0.1001,
            dW1=[[-0.0129, -0.0258], [-0.0100, -0.0200]], db1=[-0.0129, -0.0100],
            W2=[[0.7785, 0.8874]], b2=[1.0035],
            W1=[[0.1131, 0.4257], [0.2102, 0.5204]], b1=[0.3130, 0.6102]),
    3: dict(a1=[1.2775, 1.8610], u=[0.7825, 0.8653], z=2.2488, yhat=0.9042, loss=0.1010,
            dW2=[-0.0737, -0.0816], db2=-0.0950,
            dW1=[[-0.0125, -0.0250], [-0.0097, -0.0194]], db1=[-0.0125, -0.0097],
            W2=[[0.8154, 0.9282]], b2=[1.0510],
            W1=[[0.1194, 0.4382], [0.2150, 0.5298]], b1=[0.3193, 0.6150]),
}

# Exact values (float64 arithmetic, shown to 8 decimals), from s000_reference() below, hard-coded
# so that the reference itself is pinned. Same meaning of the keys as S000_PRINTED.
S000_EXACT = {
    1: dict(z=2.12448650, yhat=0.89326046, loss=0.11287708,
            W2=[[0.74101599, 0.84579921]], b2=[0.95336977],
            W1=[[0.10664593, 0.41329186], [0.20519733, 0.51039467]], b1=[0.30664593, 0.60519733]),
    2: dict(z=2.25705570, yhat=0.90525741, loss=0.09953594,
            W2=[[0.77775444, 0.88662866]], b2=[1.00074107],
            W1=[[0.11275651, 0.42551303], [0.20996632, 0.51993264]], b1=[0.31275651, 0.60996632]),
    3: dict(z=2.37601240, yhat=0.91497974, loss=0.08885335,
            W2=[[0.81099141, 0.92341154]], b2=[1.04325120],
            W1=[[0.11839548, 0.43679095], [0.21436012, 0.52872025]], b1=[0.31839548, 0.61436012]),
}

# Where the seed's printed numbers differ from exact arithmetic (exact - printed), for the
# record. Iteration 1's UPDATED PARAMETERS all agree to 4 decimals; the intermediate values are
# rounded loosely:
#   z:     printed 2.1244,  exact 2.1244865 (rounds to 2.1245; the seed truncates)
#   yhat:  printed 0.8934,  exact 0.8932605 (diff -1.4e-4; g(2.1244) itself is 0.89325)
#   loss:  printed 0.1122,  exact 0.1128771 (diff +6.8e-4; even -log(0.8934) = 0.11272, not 0.1122)
#   dL/dyhat: printed -1.1193 (= -1/0.8934), exact -1.1194940
#   dW2:   printed [-0.08196, -0.09153], exact [-0.0820320, -0.0915984]
#   (yhat-y)*W2: printed [-0.07466, -0.08533], exact [-0.0747177, -0.0853916]
#   dW1 column 1 / db1: printed [-0.01328, -0.01038], exact [-0.0132919, -0.0103947]
# Iteration 2: a^(1) printed [1.2398, 1.8312] is right for the seed's own rounded parameters
# (exact [1.2398756, 1.8311840]); u printed [0.7757, 0.8618], but g(1.2398) = 0.77553 and exact
# u = [0.7755424, 0.8619027]. Then the slip: printed z = 2.1885, but its own inputs give
# 0.7410*0.7757 + 0.8458*0.8618 + 0.9534 = 2.2571, and exact z = 2.2570557: the seed's z is
# 0.0686 too small. Everything downstream inherits it:
#   yhat printed 0.8993 vs exact 0.9052574; loss printed 0.1061 vs exact 0.0995359;
#   db2 printed -0.1001 vs exact -0.0947426; dW2 printed [-0.0749, -0.0832] vs
#   exact [-0.0734769, -0.0816589]; db1 printed [-0.0129, -0.0100] vs exact [-0.0122212, -0.0095380];
#   updated W2 printed [0.7785, 0.8874] vs exact [0.7777544, 0.8866287];
#   updated b2 printed 1.0035 vs exact 1.0007411;
#   updated W1 printed [[0.1131, 0.4257], [0.2102, 0.5204]] vs exact
#   [[0.1127565, 0.4255130], [0.2099663, 0.5199326]];
#   updated b1 printed [0.3130, 0.6102] vs exact [0.3127565, 0.6099663].
# Iteration 3 repeats the slip on top of the iteration-2 error: printed z = 2.2488, but its own
# inputs give 0.7785*0.7825 + 0.8874*0.8653 + 1.0035 = 2.3805 (0.1318 too small), and exact
# z = 2.3760124 (printed is 0.1272 below exact). yhat printed 0.9042 vs exact 0.9149797; loss
# printed 0.1010 vs exact 0.0888534; final W2 printed [0.8154, 0.9282] vs exact
# [0.8109914, 0.9234115]; final b2 printed 1.0510 vs exact 1.0432512; final W1 printed
# [[0.1194, 0.4382], [0.2150, 0.5298]] vs exact [[0.1183955, 0.4367910], [0.2143601, 0.5287203]];
# final b1 printed [0.3193, 0.6150] vs exact [0.3183955, 0.6143601].
S000_SEED_OWN_Z = {2: 0.7410 * 0.7757 + 0.8458 * 0.8618 + 0.9534,   # = 2.2571041
                   3: 0.7785 * 0.7825 + 0.8874 * 0.8653 + 1.0035}   # = 2.3805435


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def s000_reference(steps=S000_STEPS):
    """Seed 000's Algorithm 3.1 written out per component: SGD on (x, y), eta = 0.5.

    Returns a list with one dict per iteration: the forward values (a1, u, z, yhat, loss), the
    gradients (dW1, db1, dW2, db2) and the parameters after the update (W1, b1, W2, b2), with
    W1 (2, 2) and W2 (1, 2) as nested lists in fastnn's (out, in) layout.
    """
    W1 = [row[:] for row in S000_W1]
    b1 = S000_B1[:]
    w2 = S000_W2[0][:]
    b2 = S000_B2[0]
    x, y, eta = S000_X, S000_Y, S000_ETA
    out = []
    for _ in range(steps):
        # forward: a_i = sum_j W1[i][j] x_j + b1_i, u_i = g(a_i), z = sum_i w2_i u_i + b2
        a1 = [W1[i][0] * x[0] + W1[i][1] * x[1] + b1[i] for i in range(2)]
        u = [_sigmoid(a) for a in a1]
        z = w2[0] * u[0] + w2[1] * u[1] + b2
        yhat = _sigmoid(z)
        loss = -y * math.log(yhat) - (1.0 - y) * math.log(1.0 - yhat)
        # backward: dL/dz = yhat - y (seed 000, BCE with sigmoid)
        dz = yhat - y
        dW2 = [dz * u[0], dz * u[1]]
        db2 = dz
        delta = [dz * w2[i] * u[i] * (1.0 - u[i]) for i in range(2)]
        dW1 = [[delta[i] * x[j] for j in range(2)] for i in range(2)]
        db1 = delta[:]
        # update (all gradients taken at the old parameters)
        w2 = [w2[i] - eta * dW2[i] for i in range(2)]
        b2 = b2 - eta * db2
        W1 = [[W1[i][j] - eta * dW1[i][j] for j in range(2)] for i in range(2)]
        b1 = [b1[i] - eta * db1[i] for i in range(2)]
        out.append(dict(a1=a1, u=u, z=z, yhat=yhat, loss=loss,
                        dW1=dW1, db1=db1, dW2=[dW2], db2=[db2],
                        W1=[row[:] for row in W1], b1=b1[:], W2=[w2[:]], b2=[b2]))
    return out


# ------------------------------------------------------------------------------------------
# Seed 001: logistic regression demo (PyTorch, torch.manual_seed(1), W and b from torch.rand)
# ------------------------------------------------------------------------------------------
S001_X = [[-8.0, 1.0, -3.0, 5.0, 2.0],
          [-2.0, 2.0, -1.0, 5.0, 2.0],
          [7.0, 1.0, 9.0, -5.0, -2.0]]
S001_W = [[0.7576, 0.2793, 0.4031, 0.7347, 0.0293]]   # printed to 4 decimals, shape (1, 5)
S001_B = [0.7999]
S001_Z_PRINTED = [-2.4591, 3.1721, 6.2782]
S001_A_PRINTED = [0.0788, 0.9598, 0.9981]
# The seed prints W and b rounded to 4 decimals (they are float32 torch.rand draws), so z from the
# printed W differs from the printed z by up to 5e-5 * (sum_j |x_j| + 1) per row:
# from the printed W, z = [-2.4588, 3.1723, 6.2782] (exact - printed = +3e-4, +2e-4, 0).
S001_Z_ROUNDING_BOUND = [0.5e-4 * (sum(abs(v) for v in row) + 1.0) for row in S001_X]
# The seed gives no labels for these samples; for the gradient/update checks we use these.
S001_Y = [0.0, 1.0, 1.0]


def s001_reference(X=S001_X, W=S001_W, b=S001_B, y=S001_Y):
    """Forward, mean BCE, gradient and mean-MSE (identity output) values, per component."""
    n, d = len(X), len(X[0])
    z = [sum(W[0][j] * X[i][j] for j in range(d)) + b[0] for i in range(n)]
    a = [_sigmoid(v) for v in z]
    bce = sum(-y[i] * math.log(a[i]) - (1 - y[i]) * math.log(1 - a[i]) for i in range(n)) / n
    # dL/dz_i = (a_i - y_i) / n; dL/dw = sum_i dL/dz_i x_i^T; dL/db = sum_i dL/dz_i
    dz = [(a[i] - y[i]) / n for i in range(n)]
    dW = [[sum(dz[i] * X[i][j] for i in range(n)) for j in range(d)]]
    db = [sum(dz)]
    # identity output with div = 1/2 (yhat - y)^2, averaged over the batch
    mse = sum(0.5 * (z[i] - y[i]) ** 2 for i in range(n)) / n
    dz_mse = [(z[i] - y[i]) / n for i in range(n)]
    dW_mse = [[sum(dz_mse[i] * X[i][j] for i in range(n)) for j in range(d)]]
    db_mse = [sum(dz_mse)]
    return dict(z=z, a=a, bce=bce, dW=dW, db=db, mse=mse, dW_mse=dW_mse, db_mse=db_mse)


# ------------------------------------------------------------------------------------------
# Seed 003: hard-threshold networks, g(z) = 1 if z >= 0 else 0, threshold output (4)
# ------------------------------------------------------------------------------------------
# Problem 1: scalar input.
S003_P1 = dict(WH=[[1.0], [1.0]], bH=[-1.0, -3.0], WO=[[-1.0, 2.0]], bO=[0.5])


def s003_p1_expected(x):
    """Seed 003 solution 1(b)-(e): zH = (x-1, x-3), uH = (1{x>=1}, 1{x>=3}), zO piecewise."""
    zH = [x - 1.0, x - 3.0]
    uH = [1.0 if x >= 1 else 0.0, 1.0 if x >= 3 else 0.0]
    zO = 0.5 if x < 1 else (-0.5 if x < 3 else 1.5)
    yhat = 0.0 if 1 <= x < 3 else 1.0
    return zH, uH, zO, yhat


# Problem 2: the seed's solution network and its Table 1 (columns x = 0, 1, 3, 5 | test 3.5).
# The table's row labels carry typos ("z_i2 = x - 2" and "u_i1" twice); its numbers are those of
# z_i2 = x - 4 and u_i2 = g(z_i2), which is what the network computes.
S003_P2 = dict(WH=[[1.0], [1.0]], bH=[-2.0, -4.0], WO=[[1.0, -2.0]], bO=[-0.5])
S003_P2_TABLE = dict(
    x=[0.0, 1.0, 3.0, 5.0, 3.5],
    zH1=[-2.0, -1.0, 1.0, 3.0, 1.5],
    zH2=[-4.0, -3.0, -1.0, 1.0, -0.5],   # see note below
    uH1=[0.0, 0.0, 1.0, 1.0, 1.0],
    uH2=[0.0, 0.0, 0.0, 1.0, 0.0],
    zO=[-0.5, -0.5, 0.5, -1.5, 0.5],
    yhat=[0.0, 0.0, 1.0, 0.0, 1.0],
    y=[0.0, 0.0, 1.0, 0.0],              # training labels (the test column has none)
)
# Note: the seed's table prints z_i2 = +0.5 for the test point x = 3.5; x - 4 = -0.5. Its u_i2 = 0
# for that column is consistent with -0.5 (g(+0.5) would be 1, and then zO = -1.5, yhat = 0), and
# its zO = 0.5, yhat = 1 are right, so the +0.5 is a sign typo; -0.5 is used above.
S003_P2_Z2_PRINTED_TEST = 0.5

# Problem 3: two inputs, three hidden units.
S003_P3 = dict(WH=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], bH=[0.0, 0.0, -1.0],
               WO=[[1.0, 1.0, -1.0]], bO=[-1.5])


def s003_p3_expected(x1, x2):
    """Seed 003 solution 3: uH = (1{x1>=0}, 1{x2>=0}, 1{x1+x2>=1}),
    zO = uH1 + uH2 - uH3 - 1.5, yhat = 1 exactly on the triangle x1>=0, x2>=0, x1+x2<1.

    (Solution 3(a) writes the third unit as 1{x1+x2 > 1}; with g(z) = 1{z >= 0} it is
    1{x1+x2 >= 1}, which is what 3(b) uses and what makes the triangle open on that side.)
    """
    uH = [1.0 if x1 >= 0 else 0.0, 1.0 if x2 >= 0 else 0.0, 1.0 if x1 + x2 >= 1 else 0.0]
    zO = uH[0] + uH[1] - uH[2] - 1.5
    yhat = 1.0 if (x1 >= 0 and x2 >= 0 and x1 + x2 < 1) else 0.0
    return uH, zO, yhat
