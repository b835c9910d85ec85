"""Reference vectors for constml's neural-network training pieces (layers,
activations, losses, optimisers, gradient clipping, one MLP step).

Run from the repository root:  python3 tests/reference/gen_nn.py
Writes tests/reference/nn.bin (CMLREF01, see refvec.py).

Storage conventions (the same as gen_norm.py): inputs are drawn in float32 and
stored as f32, so they are exact in both precisions. Every output is computed
twice by PyTorch from those same inputs, once in float32 (suffix /f32) and once
after converting the inputs to float64 (suffix /f64). Unless a case is itself a
loss, gradients are the autograd gradients of the scalar sum(output * dy) with
the stored dy; for a loss they are the gradients of the loss value. Scalars
(losses, norms) are stored with shape (1). Integers (ids, class targets) are
i64. Each section reseeds torch with its own fixed seed, so adding a section
later leaves the other sections' random draws alone.

Linear layer (nn.Linear: weight (OUT, IN), y = x W^T + b)
  linear/x (5, 7), linear/weight (4, 7), linear/bias (4), linear/dy (5, 4)
  linear/y, linear/dx, linear/dweight, linear/dbias        (per precision)

Activations, all applied elementwise to the same input
  act/x (3, 11)  row 0 is 0.0, 1e-3, -1e-3, 0.5, -0.5, 3, -3, 20, -20 (the f32
                 roundings of these) and two normal draws; rows 1 and 2 are normal
                 draws.
  act/dy (3, 11)
  {case}/y, {case}/dx for the cases
    relu       max(x, 0). PyTorch's gradient at exactly x = 0 is 0 (its backward
               passes dy only where the output is > 0), so relu/dx is 0 at act/x[0, 0].
    sigmoid    1 / (1 + exp(-x)). The backward works from the saved output,
               dx = dy * y * (1 - y). At x = 20 the f32 output rounds to exactly 1,
               so the f32 dx there is exactly 0 (the true slope is about 2.1e-9;
               the f64 run keeps it).
    tanh       dx = dy * (1 - y^2), again from the output; tanh(+-20) is +-1 exactly
               in both precisions, so dx is 0 there in both.
    silu       x * sigmoid(x).
    gelu       F.gelu(x, approximate="none"): x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
    gelu_tanh  F.gelu(x, approximate="tanh"):
               0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).

Softmax over the last dimension
  softmax/x (4, 6)   row 0 normal draws; row 1 has -inf in columns 0 and 2 (the
                     other four are finite); row 2 normal draws times 0.1; row 3
                     normal draws plus 80 (exp would overflow f32 without the
                     usual max subtraction).
  softmax/dy (4, 6)
  softmax/y, softmax/dx              F.softmax(x, dim=-1). y is exactly 0 at the
                                     -inf entries and dx is 0 there too.
  log_softmax/y, log_softmax/dx      F.log_softmax(x, dim=-1) on the same softmax/x
                                     and softmax/dy (not stored again). y is -inf at
                                     the -inf entries; PyTorch's backward is
                                     dx = dy - exp(y) * sum(dy), which gives dx = dy
                                     (finite) at those entries.

Embedding (F.embedding, a row lookup)
  embedding/weight (10, 4), embedding/ids i64 [3, 1, 3, 9, 0, 3], embedding/dy (6, 4)
  embedding/y (6, 4)           weight[ids]
  embedding/dweight (10, 4)    scatter-add of the dy rows: row 3 gets the sum of
                               three dy rows, rows 2 and 4..8 stay 0.

Mean squared error
  mse/pred (6, 3), mse/target (6, 3)
  mse/loss (1)    F.mse_loss(pred, target), reduction "mean": mean((pred - target)^2)
  mse/dpred       gradient of that loss: 2 (pred - target) / 18

Cross-entropy from logits (F.cross_entropy, reduction "mean", C = 4 classes)
  ce/logits (5, 4), ce/target i64 [0, 3, 2, 3, 1]; shared by ce, ce_smooth,
  ce_ignore and ce_ignore_smooth. Each case stores loss (1) and dlogits (5, 4).
    ce                plain.
    ce_smooth         label_smoothing = 0.1 (ce_smooth/label_smoothing f64 [0.1]).
    ce_ignore         ignore_index = 2 (ce_ignore/ignore_index i64 [2]): sample 2
                      drops out, the mean is over the 4 other samples and row 2 of
                      dlogits is 0.
    ce_ignore_smooth  ignore_index = 2 and label_smoothing = 0.1 (both stored as
                      above, ce_ignore_smooth/ignore_index, /label_smoothing).
    ce_big            ce_big/logits (5, 4): uniform in [-1e4, 1e4] (f32), targets
                      ce/target, plain. A stability check: the loss is of order 1e4
                      and most softmax entries underflow to exactly 0 (12 of the
                      20 f32 dlogits entries are exactly 0).
  With eps = label_smoothing, logp = log_softmax(logits), V = the samples whose
  target is not ignore_index and N = |V|, PyTorch computes
      loss = (1 - eps) * (1/N) sum_{i in V} -logp[i, t_i]
             + (eps / C) * (1/N) sum_{i in V} sum_c -logp[i, c]
  (both terms divided by the count of non-ignored samples), and
      dlogits[i] = (softmax(logits[i]) - (1 - eps) onehot(t_i) - eps / C) / N for
      i in V, and 0 for ignored rows.

Binary cross-entropy with logits (F.binary_cross_entropy_with_logits, mean)
  bce/x (8)        [30, -30, 0, -30, 30] followed by three normal draws.
  bce/target (8)   [1, 1, 0.3, 0, 0, 0.3, 1, 0]: the saturated inputs either agree
                   with their target (x = 30, t = 1 and x = -30, t = 0: losses of
                   about 1e-13) or contradict it (x = -30, t = 1 and x = 30, t = 0:
                   losses of about 30).
  bce/loss (1)     mean over i of max(x, 0) - x t + log(1 + exp(-|x|))
  bce/dx (8)       (sigmoid(x) - t) / 8

Optimisers. Two parameters, opt/p0 (3, 4) and opt/p1 (4) (f32 initial values),
and four gradient sets opt/grad{t}/p0, opt/grad{t}/p1, t = 0..3 (f32). For each
case a fresh optimiser over [p0, p1] (in the precision of the run) does four
steps; before step t both .grad fields are set to the stored gradient set t,
then opt.step() runs. Stored: opt/{case}/step{t}/p0 and /p1, the parameters
after step t, per precision. The gradients are fixed inputs, not recomputed from
the parameters. opt/{case}/params f64 holds the hyper-parameters:
    SGD cases:   [lr, momentum, dampening, weight_decay, nesterov (0 or 1)]
    Adam cases:  [lr, beta1, beta2, eps, weight_decay]
  sgd_plain     SGD(lr=0.1)
  sgd_momentum  SGD(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
  sgd_nesterov  SGD(lr=0.05, momentum=0.9, dampening=0, nesterov=True, weight_decay=0.01)
  adam          Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
  adam_l2       Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)
  adamw         AdamW(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
All parameters are CPU tensors, and with foreach and fused left unset PyTorch
picks the single-tensor code path there (foreach is only chosen by default for
accelerator devices; forcing foreach=True was checked to give bit-identical
results on these inputs). Read from torch/optim/sgd.py, adam.py and adamw.py of the
installed version, per parameter and per step (g = the gradient as given,
p = the parameter before the step; maximize and amsgrad are off):
  SGD (lr, momentum mu, dampening tau, weight_decay wd, nesterov)
    1. If wd != 0: g <- g + wd * p (an L2 term folded into the gradient, before
       anything else).
    2. If mu != 0: on the first step the momentum buffer is created as an exact
       copy of this g (no dampening factor and no mu on that step); on later
       steps b <- mu * b + (1 - tau) * g. Then the step direction is
       d = g + mu * b with nesterov (g being the decayed gradient of step 1, b the
       buffer just updated), else d = b.
       If mu == 0: d = g.
    3. p <- p - lr * d.
    So with momentum the first step is p - lr * g (or p - lr * (1 + mu) g with
    nesterov), whatever tau is.
  Adam (lr, beta1, beta2, eps, weight_decay wd; decoupled_weight_decay=False)
    1. The step counter t is incremented first (it starts at 0, so the first
       step uses t = 1).
    2. If wd != 0: g <- g + wd * p (plain L2, so the decay goes into both moments).
    3. m <- m + (1 - beta1) * (g - m), written as lerp_(g, 1 - beta1); the same as
       beta1 * m + (1 - beta1) * g up to rounding. m starts at 0.
    4. v <- beta2 * v + (1 - beta2) * g * g (mul_ then addcmul_). v starts at 0.
    5. bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, step_size = lr / bc1; these scalars
       are computed in Python double precision, also in the f32 run (they are
       rounded to f32 only when applied to the f32 tensors).
    6. denom = sqrt(v) / sqrt(bc2) + eps: eps is added after the bias correction
       of the square root, i.e. outside sqrt(v_hat), the textbook form
       m_hat / (sqrt(v_hat) + eps).
    7. p <- p - step_size * m / denom.
  AdamW (the same class code with decoupled_weight_decay=True)
    Identical to Adam except step 2: instead of changing g, the parameter itself
    is first multiplied by (1 - lr * wd) (the factor computed in double, then
    applied to p in the run's precision), before the moments are updated and
    before the Adam update of step 7 is subtracted. The moments never see wd.

Gradient clipping (torch.nn.utils.clip_grad_norm_, norm_type 2)
  clip/grad/p0 (3, 4), clip/grad/p1 (4)  the 4th gradient set (opt/grad3) times 10,
                                         rounded to f32 (these are the inputs).
  clip/max_norm f64 [1.0]                (used by clip_noop too)
  clip/p0, clip/p1                       the gradients after clipping
  clip/total_norm (1)                    the returned norm (before clipping)
  clip_noop/*    the same with opt/grad3 times 0.01 (norm below 1): the coefficient
                 is clamped to 1 and the gradients come back unchanged. Stores
                 clip_noop/grad/p0, /grad/p1, /p0, /p1, /total_norm.
  What the installed clip_grad.py does: the norm of each gradient tensor is taken
  separately (torch._foreach_norm on CPU), and total_norm is the 2-norm of the
  vector of those per-tensor norms, i.e. sqrt(sum of all squared entries) over
  both tensors. Then clip_coef = max_norm / (total_norm + 1e-6), clamped to at
  most 1.0 (torch.clamp(..., max=1.0): gradients are only ever scaled down), and
  every gradient is multiplied in place by the clamped coefficient. The
  multiplication is done unconditionally (by 1.0 when nothing needs clipping).
  The 1e-6 means that a clipped result has a norm slightly below max_norm
  (max_norm * total_norm / (total_norm + 1e-6)), not exactly max_norm. The
  coefficient is a 0-d tensor in the gradients' dtype.

One training step of a small MLP
  mlp/x (8, 6), mlp/target i64 (8): classes 0, 1, 2 (three, three and two
  samples) in a seeded random order,
  mlp/w1 (5, 6), mlp/b1 (5), mlp/w2 (3, 5), mlp/b2 (3) (f32 initial values).
  Model: Linear(6 -> 5) -> ReLU -> Linear(5 -> 3), loss F.cross_entropy (mean).
  mlp/logits (8, 3), mlp/loss (1), gradients mlp/dw1, mlp/db1, mlp/dw2, mlp/db2,
  then one SGD(lr=0.1, momentum=0.9) step (mlp/params f64 [0.1, 0.9]):
  mlp/w1_after, mlp/b1_after, mlp/w2_after, mlp/b2_after. Being the first step,
  the momentum buffer is the gradient itself, so *_after = initial - 0.1 * grad.
  None of the hidden pre-activations is exactly 0 (asserted), so the ReLU
  gradient convention does not matter here.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

OUT = {}
PRECISIONS = (("f32", torch.float32), ("f64", torch.float64))


def put(name, a):
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    assert name not in OUT, name
    # Always a copy: numpy() shares memory with the tensor, and optimiser steps
    # and gradient clipping modify parameters and gradients in place.
    OUT[name] = np.array(a, copy=True, order="C")


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def f32(values):
    return torch.tensor(values, dtype=torch.float32)


def i64(values):
    return torch.tensor(values, dtype=torch.int64)


def scalar(t):
    return t.detach().reshape(1)


def leaf(t, dt):
    """A fresh leaf tensor in dtype dt that records its gradient."""
    return t.to(dt).clone().requires_grad_(True)


# ---------------------------------------------------------------- linear
torch.manual_seed(9101)
lin_x, lin_w, lin_b, lin_dy = randn(5, 7), 0.4 * randn(4, 7), 0.2 * randn(4), randn(5, 4)
for n, v in (("x", lin_x), ("weight", lin_w), ("bias", lin_b), ("dy", lin_dy)):
    put(f"linear/{n}", v)
for tag, dt in PRECISIONS:
    lin = nn.Linear(7, 4, dtype=dt)
    with torch.no_grad():
        lin.weight.copy_(lin_w)
        lin.bias.copy_(lin_b)
    x = leaf(lin_x, dt)
    y = lin(x)
    (y * lin_dy.to(dt)).sum().backward()
    put(f"linear/y/{tag}", y)
    put(f"linear/dx/{tag}", x.grad)
    put(f"linear/dweight/{tag}", lin.weight.grad)
    put(f"linear/dbias/{tag}", lin.bias.grad)

# ---------------------------------------------------------------- activations
torch.manual_seed(9201)
act_x = randn(3, 11)
act_x[0, :9] = f32([0.0, 1e-3, -1e-3, 0.5, -0.5, 3.0, -3.0, 20.0, -20.0])
act_dy = randn(3, 11)
put("act/x", act_x)
put("act/dy", act_dy)
ACTIVATIONS = {
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "silu": F.silu,
    "gelu": lambda t: F.gelu(t, approximate="none"),
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
}
for case, fn in ACTIVATIONS.items():
    for tag, dt in PRECISIONS:
        x = leaf(act_x, dt)
        y = fn(x)
        (y * act_dy.to(dt)).sum().backward()
        put(f"{case}/y/{tag}", y)
        put(f"{case}/dx/{tag}", x.grad)
assert OUT["relu/dx/f32"][0, 0] == 0.0 and OUT["relu/dx/f64"][0, 0] == 0.0
assert OUT["sigmoid/y/f32"][0, 7] == 1.0 and OUT["sigmoid/dx/f32"][0, 7] == 0.0
assert OUT["sigmoid/dx/f64"][0, 7] != 0.0
for tag in ("f32", "f64"):
    assert abs(OUT[f"tanh/y/{tag}"][0, 7]) == 1.0 and OUT[f"tanh/dx/{tag}"][0, 7] == 0.0
    assert abs(OUT[f"tanh/y/{tag}"][0, 8]) == 1.0 and OUT[f"tanh/dx/{tag}"][0, 8] == 0.0

# ---------------------------------------------------------------- softmax
torch.manual_seed(9301)
sm_x = randn(4, 6)
sm_x[1, [0, 2]] = float("-inf")
sm_x[2] *= 0.1
sm_x[3] += 80.0
sm_dy = randn(4, 6)
put("softmax/x", sm_x)
put("softmax/dy", sm_dy)
for case, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
    for tag, dt in PRECISIONS:
        x = leaf(sm_x, dt)
        y = fn(x, dim=-1)
        (y * sm_dy.to(dt)).sum().backward()
        assert torch.isfinite(x.grad).all(), case
        put(f"{case}/y/{tag}", y)
        put(f"{case}/dx/{tag}", x.grad)
for tag in ("f32", "f64"):
    assert (OUT[f"softmax/y/{tag}"][1, [0, 2]] == 0).all() and (OUT[f"softmax/dx/{tag}"][1, [0, 2]] == 0).all()
    assert np.isneginf(OUT[f"log_softmax/y/{tag}"][1, [0, 2]]).all()
    assert np.array_equal(OUT[f"log_softmax/dx/{tag}"][1, [0, 2]], OUT["softmax/dy"][1, [0, 2]].astype(tag.replace("f", "float")))

# ---------------------------------------------------------------- embedding
torch.manual_seed(9401)
emb_w, emb_ids, emb_dy = randn(10, 4), i64([3, 1, 3, 9, 0, 3]), randn(6, 4)
put("embedding/weight", emb_w)
put("embedding/ids", emb_ids)
put("embedding/dy", emb_dy)
for tag, dt in PRECISIONS:
    w = leaf(emb_w, dt)
    y = F.embedding(emb_ids, w)
    (y * emb_dy.to(dt)).sum().backward()
    put(f"embedding/y/{tag}", y)
    put(f"embedding/dweight/{tag}", w.grad)

# ---------------------------------------------------------------- mse
torch.manual_seed(9501)
mse_pred, mse_target = randn(6, 3), randn(6, 3)
put("mse/pred", mse_pred)
put("mse/target", mse_target)
for tag, dt in PRECISIONS:
    p = leaf(mse_pred, dt)
    loss = F.mse_loss(p, mse_target.to(dt))
    loss.backward()
    put(f"mse/loss/{tag}", scalar(loss))
    put(f"mse/dpred/{tag}", p.grad)

# ---------------------------------------------------------------- cross-entropy
torch.manual_seed(9601)
ce_logits = 2.0 * randn(5, 4)
ce_target = i64([0, 3, 2, 3, 1])
ce_big_logits = (2.0 * torch.rand(5, 4, dtype=torch.float32) - 1.0) * 1e4
put("ce/logits", ce_logits)
put("ce/target", ce_target)
put("ce_big/logits", ce_big_logits)
CE_CASES = {
    "ce": (ce_logits, {}),
    "ce_smooth": (ce_logits, {"label_smoothing": 0.1}),
    "ce_ignore": (ce_logits, {"ignore_index": 2}),
    "ce_ignore_smooth": (ce_logits, {"ignore_index": 2, "label_smoothing": 0.1}),
    "ce_big": (ce_big_logits, {}),
}
for case, (logits, kw) in CE_CASES.items():
    if "ignore_index" in kw:
        put(f"{case}/ignore_index", np.array([kw["ignore_index"]], dtype=np.int64))
    if "label_smoothing" in kw:
        put(f"{case}/label_smoothing", np.array([kw["label_smoothing"]], dtype=np.float64))
    for tag, dt in PRECISIONS:
        z = leaf(logits, dt)
        loss = F.cross_entropy(z, ce_target, reduction="mean", **kw)
        loss.backward()
        put(f"{case}/loss/{tag}", scalar(loss))
        put(f"{case}/dlogits/{tag}", z.grad)
assert (OUT["ce_big/dlogits/f32"] == 0).sum() == 12
for case in ("ce_ignore", "ce_ignore_smooth"):
    for tag in ("f32", "f64"):
        assert (OUT[f"{case}/dlogits/{tag}"][2] == 0).all()

# ---------------------------------------------------------------- bce
torch.manual_seed(9701)
bce_x = torch.cat([f32([30.0, -30.0, 0.0, -30.0, 30.0]), randn(3)])
bce_t = f32([1.0, 1.0, 0.3, 0.0, 0.0, 0.3, 1.0, 0.0])
put("bce/x", bce_x)
put("bce/target", bce_t)
for tag, dt in PRECISIONS:
    x = leaf(bce_x, dt)
    loss = F.binary_cross_entropy_with_logits(x, bce_t.to(dt), reduction="mean")
    loss.backward()
    put(f"bce/loss/{tag}", scalar(loss))
    put(f"bce/dx/{tag}", x.grad)

# ---------------------------------------------------------------- optimisers
torch.manual_seed(9801)
opt_p0, opt_p1 = 0.5 * randn(3, 4), 0.5 * randn(4)
opt_grads = [(randn(3, 4), randn(4)) for _ in range(4)]
put("opt/p0", opt_p0)
put("opt/p1", opt_p1)
for t, (g0, g1) in enumerate(opt_grads):
    put(f"opt/grad{t}/p0", g0)
    put(f"opt/grad{t}/p1", g1)

OPTIMISERS = {
    # name: (constructor, kwargs, params vector)
    "sgd_plain": (torch.optim.SGD, dict(lr=0.1), [0.1, 0.0, 0.0, 0.0, 0.0]),
    "sgd_momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
                     [0.1, 0.9, 0.1, 0.01, 0.0]),
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.01),
                     [0.05, 0.9, 0.0, 0.01, 1.0]),
    "adam": (torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
             [0.01, 0.9, 0.999, 1e-8, 0.0]),
    "adam_l2": (torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
                [0.01, 0.8, 0.99, 1e-6, 0.05]),
    "adamw": (torch.optim.AdamW, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
              [0.01, 0.9, 0.999, 1e-8, 0.1]),
}
for case, (cls, kw, vec) in OPTIMISERS.items():
    put(f"opt/{case}/params", np.array(vec, dtype=np.float64))
    for tag, dt in PRECISIONS:
        p0 = nn.Parameter(opt_p0.to(dt).clone())
        p1 = nn.Parameter(opt_p1.to(dt).clone())
        opt = cls([p0, p1], **kw)
        for t, (g0, g1) in enumerate(opt_grads):
            p0.grad = g0.to(dt).clone()
            p1.grad = g1.to(dt).clone()
            opt.step()
            put(f"opt/{case}/step{t}/p0/{tag}", p0)
            put(f"opt/{case}/step{t}/p1/{tag}", p1)
# The stored gradient sets must be untouched by the steps.
for t, (g0, g1) in enumerate(opt_grads):
    assert np.array_equal(OUT[f"opt/grad{t}/p0"], g0.numpy()) and np.array_equal(OUT[f"opt/grad{t}/p1"], g1.numpy())

# ---------------------------------------------------------------- clipping
CLIP_MAX = 1.0
put("clip/max_norm", np.array([CLIP_MAX], dtype=np.float64))
for case, factor in (("clip", 10.0), ("clip_noop", 0.01)):
    g0, g1 = opt_grads[3][0] * factor, opt_grads[3][1] * factor
    put(f"{case}/grad/p0", g0)
    put(f"{case}/grad/p1", g1)
    for tag, dt in PRECISIONS:
        p0 = nn.Parameter(opt_p0.to(dt).clone())
        p1 = nn.Parameter(opt_p1.to(dt).clone())
        p0.grad = g0.to(dt).clone()
        p1.grad = g1.to(dt).clone()
        total = torch.nn.utils.clip_grad_norm_([p0, p1], max_norm=CLIP_MAX)
        assert total.dtype == dt
        put(f"{case}/p0/{tag}", p0.grad)
        put(f"{case}/p1/{tag}", p1.grad)
        put(f"{case}/total_norm/{tag}", scalar(total))
assert OUT["clip/total_norm/f64"][0] > 1.0 and OUT["clip_noop/total_norm/f64"][0] < 1.0
for tag in ("f32", "f64"):
    assert np.array_equal(OUT[f"clip_noop/p0/{tag}"], OUT["clip_noop/grad/p0"].astype(OUT[f"clip_noop/p0/{tag}"].dtype))

# ---------------------------------------------------------------- mlp step
torch.manual_seed(9901)
mlp_x = randn(8, 6)
mlp_target = i64([0, 1, 2, 0, 1, 2, 0, 1])[torch.randperm(8)]  # every class present
mlp_init = {"w1": 0.5 * randn(5, 6), "b1": 0.2 * randn(5), "w2": 0.5 * randn(3, 5), "b2": 0.2 * randn(3)}
put("mlp/x", mlp_x)
put("mlp/target", mlp_target)
for n, v in mlp_init.items():
    put(f"mlp/{n}", v)
put("mlp/params", np.array([0.1, 0.9], dtype=np.float64))
for tag, dt in PRECISIONS:
    l1, l2 = nn.Linear(6, 5, dtype=dt), nn.Linear(5, 3, dtype=dt)
    with torch.no_grad():
        l1.weight.copy_(mlp_init["w1"])
        l1.bias.copy_(mlp_init["b1"])
        l2.weight.copy_(mlp_init["w2"])
        l2.bias.copy_(mlp_init["b2"])
    model = nn.Sequential(l1, nn.ReLU(), l2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad(set_to_none=True)
    xd = mlp_x.to(dt)
    with torch.no_grad():
        assert (l1(xd) != 0).all(), "a hidden pre-activation is exactly 0"
    logits = model(xd)
    loss = F.cross_entropy(logits, mlp_target)
    loss.backward()
    put(f"mlp/logits/{tag}", logits)
    put(f"mlp/loss/{tag}", scalar(loss))
    for n, p in (("w1", l1.weight), ("b1", l1.bias), ("w2", l2.weight), ("b2", l2.bias)):
        put(f"mlp/d{n}/{tag}", p.grad)
    opt.step()
    for n, p in (("w1", l1.weight), ("b1", l1.bias), ("w2", l2.weight), ("b2", l2.bias)):
        put(f"mlp/{n}_after/{tag}", p)

# ---------------------------------------------------------------- write
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "nn.bin")
refvec.write(path, OUT, meta=f"tests/reference/gen_nn.py; {refvec.versions()}")
print(f"wrote {path}: {len(OUT) + 1} entries, {os.path.getsize(path)} bytes")
