"""Reference vectors for constml's normalisation family (LayerNorm, RMSNorm, BatchNorm).

Run from the repository root:  python3 tests/reference/gen_norm.py
Writes tests/reference/norm.bin (CMLREF01, see refvec.py).

Storage conventions: inputs (x, dy, weights, biases, statistics) are drawn in
float32 and stored as f32, so they are exact in both f32 and f64. Every output
is produced twice by the PyTorch module from those same inputs, once in float32
(suffix /f32) and once after converting the inputs to float64 (suffix /f64).
Backward passes use the scalar loss sum(y * dy) with the stored dy, so dx,
dweight and dbias are the autograd gradients of that loss. Integers are i64.
Every section reseeds torch from its own fixed seed, so adding a section later
does not change the random draws of the others.

LayerNorm (torch.nn.LayerNorm over the last dimension; y = (x - mean) * rstd *
weight + bias with the biased variance, rstd = 1 / sqrt(var + eps))
  ln_affine/*          x (6, 10), eps 1e-5, seeded weight and bias (10). Row 0 is
                       1000 + 0.01 randn (large mean, tiny spread: a one-pass
                       E[x^2] - E[x]^2 in f32 loses everything here), row 2 is
                       constant 3.0 (zero variance, so y = bias there), the other
                       rows randn. Inputs x, weight, bias, dy; outputs y, dx,
                       dweight, dbias, and the saved statistics mean (6) and rstd
                       (6). mean/f32 and rstd/f32 are what torch.native_layer_norm
                       returns in float32 (its y is checked equal to the module's);
                       mean/f64 and rstd/f64 are computed explicitly in float64 from
                       the f32 x with a two-pass mean / biased variance.
  ln_affine/exact_y    f64 (6, 10): the exact LayerNorm output of the f32 x, weight
                       and bias, evaluated with mpmath at 60 significant digits and
                       rounded once to float64. An accurate f32 implementation is
                       compared against this (row 0 in particular): PyTorch's own
                       float32 y is off by about 4e-3 on row 0 and its float64 y by
                       about 6e-12. Row 0 is ill-conditioned for dx as well (rstd is
                       about 100, |dx| up to about 240): float64 dx from PyTorch and
                       from a plain two-pass formula differ there by about 7e-10.
  ln_noaffine/*        elementwise_affine=False, x (4, 7), eps 1e-5: y, dx.
  ln_nobias/*          nn.LayerNorm(9, bias=False), x (3, 9), eps 1e-5, seeded
                       weight: y, dx, dweight.
  ln_wide/*            x (3, 768), eps 1e-3, weight and bias: y, dx, dweight, dbias.

RMSNorm (torch.nn.RMSNorm; y = x / sqrt(mean(x^2) + eps) * weight)
  rms_eps/*            x (5, 12), eps 1e-5, weight: y, dx, dweight.
  rms_eps_none/*       eps=None, x (4, 8), weight: y, dx, dweight. With eps=None
                       PyTorch substitutes torch.finfo(x.dtype).eps, so the f32 run
                       uses 2^-23 (1.1920929e-07) and the f64 run 2^-52
                       (2.220446049250313e-16): the two references are computed with
                       different eps on purpose. rms_eps_none/eps holds both, f64 (2):
                       [eps used for /f32, eps used for /f64].
  rms_noaffine/*       elementwise_affine=False, eps 1e-6, x (3, 16): y, dx.
  rms_wide/*           x (1, 4096), eps 1e-5, weight: y, dx, dweight.

BatchNorm (nn.BatchNorm1d / nn.BatchNorm2d). Training mode normalises with the
batch mean and the biased batch variance over every axis except the channel
axis, and then updates running_mean / running_var as
    running = (1 - m) * running + m * batch_stat,
where the variance fed to the running estimate is the UNBIASED batch variance
(divisor n - 1, n = elements per channel). With momentum=None m = 1 /
num_batches_tracked (a cumulative moving average). The buffers start at
running_mean = 0, running_var = 1, num_batches_tracked = 0. Eval mode uses the
running buffers instead of batch statistics.
Per training step t the entries are <case>/step{t}/x and /dy (inputs, f32),
/y, /dx, and for affine cases /dweight and /dbias (the gradients of that step
alone: the parameter grads are zeroed before each backward), /running_mean and
/running_var (after the step), each in /f32 and /f64, and
/num_batches_tracked (i64 (1), identical in both precisions). After the last
step the module is put in eval mode: <case>/eval/x (f32) and /eval/y/{f32,f64}.
Affine cases also store <case>/weight and <case>/bias (f32 inputs), which are
not changed by the steps (no optimiser is run).
  bn_nc/*              BatchNorm1d(4), input (N=6, C=4), momentum 0.1, affine; three
                       steps; channel 2 of step 0 is constant 1.25 (zero batch
                       variance, so its normalised value is 0, and its running_var
                       update receives an unbiased variance of 0); eval x (5, 4).
                       PyTorch's CPU kernel evaluates y = x * a + c with
                       a = weight * invstd and c = bias - mean * a, so on that
                       constant channel its f32 y is bias + about 2e-6 (cancellation
                       in c), not bias exactly; an implementation that forms x - mean
                       first gets bias exactly. Compare with a tolerance there.
  bn_ncl/*             BatchNorm1d(3) on (N=2, C=3, L=5), momentum 0.1, affine; two
                       steps; eval x (2, 3, 5).
  bn_nchw/*            BatchNorm2d(3) on (N=2, C=3, H=4, W=5), momentum=None, affine;
                       three steps; eval x (2, 3, 4, 5).
  bn_noaffine/*        BatchNorm2d(2, affine=False) on (2, 2, 3, 3), momentum 0.1;
                       two steps (dx only, there are no parameters); eval x (2, 2, 3, 3).
  bn_one_value         nothing stored. Training-mode BatchNorm1d on an input of
                       shape (1, C) has a single value per channel; PyTorch refuses
                       it before computing anything and raises ValueError("Expected
                       more than 1 value per channel when training, got input size
                       torch.Size([1, C])"). The script asserts that this still holds.
                       (In eval mode the same input is accepted.)

Folding an eval-mode BatchNorm into the preceding layer
(torch.nn.utils.fusion). With s = bn_weight * rsqrt(running_var + eps):
  fuse_linear_bn_weights: W' = W * s[:, None], b' = (b - running_mean) * s + bn_bias.
  fuse_conv_bn_weights:   W' = W * s[:, None, None, None],
                          b' = ((b - running_mean) * rsqrt(running_var + eps)) * bn_weight
                               + bn_bias  (note the different multiplication order).
  fold_linear/*        Linear(5 -> 4): lin_weight (4, 5), lin_bias (4); BatchNorm1d(4)
                       eval statistics bn_mean (4), bn_var (4, positive), bn_weight,
                       bn_bias; bn_eps f64 (1) = 1e-5. Outputs weight (4, 5) and
                       bias (4) in f32 and f64. A check input x (3, 5) with the
                       eval-mode output of Linear -> BatchNorm1d: y (3, 4).
  fold_conv/*          Conv2d(3 -> 2, 3x3): conv_weight (2, 3, 3, 3), conv_bias (2);
                       BatchNorm2d(2) eval statistics as above (bn_eps 1e-5).
                       Outputs weight (2, 3, 3, 3) and bias (2) in f32 and f64.
"""
import os
import sys

import mpmath
import numpy as np
import torch
from mpmath import mp
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

mp.dps = 60
OUT = {}
PRECISIONS = (("f32", torch.float32), ("f64", torch.float64))


def put(name, a):
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    assert name not in OUT, name
    # A copy: numpy() shares memory with the tensor, and BatchNorm's running
    # buffers are updated in place by the later steps.
    OUT[name] = np.array(a, copy=True, order="C")


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def run_backward(module, x, dy, dt):
    """Forward + backward of sum(y * dy) in dtype dt; returns (y, dx)."""
    xt = x.to(dt).clone().requires_grad_(True)
    y = module(xt)
    (y * dy.to(dt)).sum().backward()
    return y.detach(), xt.grad.detach()


def set_params(module, weight=None, bias=None):
    with torch.no_grad():
        if weight is not None:
            module.weight.copy_(weight)
        if bias is not None:
            module.bias.copy_(bias)


# ---------------------------------------------------------------- LayerNorm
def layer_norm_case(name, x, eps, weight=None, bias=None, affine=True, use_bias=True):
    """Runs nn.LayerNorm in f32 and f64 on the same inputs and stores everything."""
    d = x.shape[-1]
    dy = randn(*x.shape)
    put(f"{name}/x", x)
    put(f"{name}/dy", dy)
    if weight is not None:
        put(f"{name}/weight", weight)
    if bias is not None:
        put(f"{name}/bias", bias)
    for tag, dt in PRECISIONS:
        m = nn.LayerNorm(d, eps=eps, elementwise_affine=affine, bias=use_bias, dtype=dt)
        set_params(m, weight, bias)
        y, dx = run_backward(m, x, dy, dt)
        put(f"{name}/y/{tag}", y)
        put(f"{name}/dx/{tag}", dx)
        if affine:
            put(f"{name}/dweight/{tag}", m.weight.grad)
            if use_bias:
                put(f"{name}/dbias/{tag}", m.bias.grad)
    return dy


def layer_norm_exact(x, weight, bias, eps):
    """mpmath LayerNorm of a 2-D f32 tensor, rounded once to float64."""
    eps = mp.mpf(eps)
    w = [mp.mpf(v) for v in weight.double().tolist()]
    b = [mp.mpf(v) for v in bias.double().tolist()]
    rows = []
    for row in x.double().tolist():
        r = [mp.mpf(v) for v in row]
        mean = mp.fsum(r) / len(r)
        var = mp.fsum((v - mean) ** 2 for v in r) / len(r)
        rstd = 1 / mp.sqrt(var + eps)
        rows.append([float((v - mean) * rstd * wi + bi) for v, wi, bi in zip(r, w, b)])
    return np.array(rows, dtype=np.float64)


torch.manual_seed(8101)
LN_EPS = 1e-5
ln_x = randn(6, 10)
ln_x[0] = 1000.0 + 0.01 * randn(10)
ln_x[2] = 3.0
ln_w = 1.0 + 0.5 * randn(10)
ln_b = 0.5 * randn(10)
layer_norm_case("ln_affine", ln_x, LN_EPS, ln_w, ln_b)
# Saved statistics: f32 from the fused kernel, f64 explicitly (two-pass).
out32, mean32, rstd32 = torch.native_layer_norm(ln_x, [10], ln_w, ln_b, LN_EPS)
assert torch.equal(out32, torch.from_numpy(OUT["ln_affine/y/f32"])), "native_layer_norm differs from the module"
put("ln_affine/mean/f32", mean32.reshape(6))
put("ln_affine/rstd/f32", rstd32.reshape(6))
x64 = ln_x.numpy().astype(np.float64)
mean64 = x64.mean(axis=1)
var64 = ((x64 - mean64[:, None]) ** 2).mean(axis=1)
put("ln_affine/mean/f64", mean64)
put("ln_affine/rstd/f64", 1.0 / np.sqrt(var64 + LN_EPS))
put("ln_affine/exact_y", layer_norm_exact(ln_x, ln_w, ln_b, LN_EPS))

torch.manual_seed(8102)
layer_norm_case("ln_noaffine", randn(4, 7), 1e-5, affine=False)

torch.manual_seed(8103)
nb_x = randn(3, 9)
layer_norm_case("ln_nobias", nb_x, 1e-5, weight=1.0 + 0.5 * randn(9), use_bias=False)

torch.manual_seed(8104)
wide_x = randn(3, 768)
layer_norm_case("ln_wide", wide_x, 1e-3, weight=1.0 + 0.5 * randn(768), bias=0.5 * randn(768))


# ---------------------------------------------------------------- RMSNorm
def rms_norm_case(name, x, eps, weight=None):
    d = x.shape[-1]
    dy = randn(*x.shape)
    put(f"{name}/x", x)
    put(f"{name}/dy", dy)
    if weight is not None:
        put(f"{name}/weight", weight)
    for tag, dt in PRECISIONS:
        m = nn.RMSNorm(d, eps=eps, elementwise_affine=weight is not None, dtype=dt)
        set_params(m, weight)
        y, dx = run_backward(m, x, dy, dt)
        put(f"{name}/y/{tag}", y)
        put(f"{name}/dx/{tag}", dx)
        if weight is not None:
            put(f"{name}/dweight/{tag}", m.weight.grad)


torch.manual_seed(8201)
rms_norm_case("rms_eps", randn(5, 12), 1e-5, weight=1.0 + 0.5 * randn(12))
torch.manual_seed(8202)
rms_norm_case("rms_eps_none", randn(4, 8), None, weight=1.0 + 0.5 * randn(8))
put("rms_eps_none/eps", np.array([torch.finfo(torch.float32).eps, torch.finfo(torch.float64).eps]))
torch.manual_seed(8203)
rms_norm_case("rms_noaffine", randn(3, 16), 1e-6)
torch.manual_seed(8204)
rms_norm_case("rms_wide", randn(1, 4096), 1e-5, weight=1.0 + 0.5 * randn(4096))


# ---------------------------------------------------------------- BatchNorm
def batch_norm_case(name, cls, channels, shape, eval_shape, steps, momentum, affine, tweak=None):
    """Training steps then eval, in f32 and f64 from the same stored inputs."""
    weight = 1.0 + 0.5 * randn(channels) if affine else None
    bias = 0.5 * randn(channels) if affine else None
    xs, dys = [], []
    for t in range(steps):
        x = randn(*shape)
        if tweak is not None:
            tweak(t, x)
        xs.append(x)
        dys.append(randn(*shape))
    x_eval = randn(*eval_shape)
    if affine:
        put(f"{name}/weight", weight)
        put(f"{name}/bias", bias)
    for t in range(steps):
        put(f"{name}/step{t}/x", xs[t])
        put(f"{name}/step{t}/dy", dys[t])
    put(f"{name}/eval/x", x_eval)
    counts = {}
    for tag, dt in PRECISIONS:
        m = cls(channels, momentum=momentum, affine=affine, dtype=dt)
        set_params(m, weight, bias)
        m.train()
        for t in range(steps):
            m.zero_grad(set_to_none=True)
            y, dx = run_backward(m, xs[t], dys[t], dt)
            p = f"{name}/step{t}"
            put(f"{p}/y/{tag}", y)
            put(f"{p}/dx/{tag}", dx)
            if affine:
                put(f"{p}/dweight/{tag}", m.weight.grad)
                put(f"{p}/dbias/{tag}", m.bias.grad)
            put(f"{p}/running_mean/{tag}", m.running_mean)
            put(f"{p}/running_var/{tag}", m.running_var)
            counts.setdefault(t, []).append(int(m.num_batches_tracked))
        m.eval()
        with torch.no_grad():
            put(f"{name}/eval/y/{tag}", m(x_eval.to(dt)))
        if affine:  # no optimiser ran: the parameters are untouched
            assert torch.equal(m.weight.detach().float(), weight)
    for t, (c32, c64) in counts.items():
        assert c32 == c64 == t + 1
        put(f"{name}/step{t}/num_batches_tracked", np.array([c32], dtype=np.int64))


def nc_constant_channel(t, x):
    if t == 0:
        x[:, 2] = 1.25


torch.manual_seed(8301)
batch_norm_case("bn_nc", nn.BatchNorm1d, 4, (6, 4), (5, 4), 3, 0.1, True, nc_constant_channel)
torch.manual_seed(8302)
batch_norm_case("bn_ncl", nn.BatchNorm1d, 3, (2, 3, 5), (2, 3, 5), 2, 0.1, True)
torch.manual_seed(8303)
batch_norm_case("bn_nchw", nn.BatchNorm2d, 3, (2, 3, 4, 5), (2, 3, 4, 5), 3, None, True)
torch.manual_seed(8304)
batch_norm_case("bn_noaffine", nn.BatchNorm2d, 2, (2, 2, 3, 3), (2, 2, 3, 3), 2, 0.1, False)

# bn_one_value: documented, nothing stored.
try:
    nn.BatchNorm1d(3).train()(torch.ones(1, 3))
    raise AssertionError("BatchNorm1d accepted a (1, C) batch in training mode")
except ValueError as e:
    assert "Expected more than 1 value per channel when training" in str(e), e
with torch.no_grad():
    nn.BatchNorm1d(3).eval()(torch.ones(1, 3))


# ---------------------------------------------------------------- folding
def bn_stats(prefix, channels):
    stats = {
        "bn_mean": 0.5 * randn(channels),
        "bn_var": 0.25 + torch.rand(channels, dtype=torch.float32),
        "bn_weight": 1.0 + 0.5 * randn(channels),
        "bn_bias": 0.5 * randn(channels),
    }
    for n, v in stats.items():
        put(f"{prefix}/{n}", v)
    put(f"{prefix}/bn_eps", np.array([FOLD_EPS]))
    return stats


FOLD_EPS = 1e-5
torch.manual_seed(8401)
lin_w, lin_b = 0.4 * randn(4, 5), 0.2 * randn(4)
put("fold_linear/lin_weight", lin_w)
put("fold_linear/lin_bias", lin_b)
lst = bn_stats("fold_linear", 4)
fold_x = randn(3, 5)
put("fold_linear/x", fold_x)
for tag, dt in PRECISIONS:
    s = {k: v.to(dt) for k, v in lst.items()}
    fw, fb = fuse_linear_bn_weights(lin_w.to(dt), lin_b.to(dt), s["bn_mean"], s["bn_var"], FOLD_EPS,
                                    s["bn_weight"], s["bn_bias"])
    put(f"fold_linear/weight/{tag}", fw)
    put(f"fold_linear/bias/{tag}", fb)
    lin = nn.Linear(5, 4, dtype=dt)
    bn = nn.BatchNorm1d(4, eps=FOLD_EPS, dtype=dt)
    with torch.no_grad():
        lin.weight.copy_(lin_w)
        lin.bias.copy_(lin_b)
        bn.running_mean.copy_(s["bn_mean"])
        bn.running_var.copy_(s["bn_var"])
        bn.weight.copy_(s["bn_weight"])
        bn.bias.copy_(s["bn_bias"])
        y = nn.Sequential(lin, bn).eval()(fold_x.to(dt))
        folded = fold_x.to(dt) @ fw.T + fb
    assert torch.allclose(y, folded, rtol=1e-5, atol=1e-5)
    put(f"fold_linear/y/{tag}", y)

torch.manual_seed(8402)
conv_w, conv_b = 0.3 * randn(2, 3, 3, 3), 0.2 * randn(2)
put("fold_conv/conv_weight", conv_w)
put("fold_conv/conv_bias", conv_b)
cst = bn_stats("fold_conv", 2)
for tag, dt in PRECISIONS:
    s = {k: v.to(dt) for k, v in cst.items()}
    fw, fb = fuse_conv_bn_weights(conv_w.to(dt), conv_b.to(dt), s["bn_mean"], s["bn_var"], FOLD_EPS,
                                  s["bn_weight"], s["bn_bias"])
    put(f"fold_conv/weight/{tag}", fw)
    put(f"fold_conv/bias/{tag}", fb)

# ---------------------------------------------------------------- write
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "norm.bin")
refvec.write(path, OUT, meta=f"tests/reference/gen_norm.py; {refvec.versions()}, mpmath {mpmath.__version__}")
print(f"wrote {path}: {len(OUT) + 1} entries, {os.path.getsize(path)} bytes")
ex = OUT["ln_affine/exact_y"]
for tag in ("f32", "f64"):
    err = np.abs(OUT[f"ln_affine/y/{tag}"].astype(np.float64) - ex).max(axis=1)
    print(f"ln_affine/y/{tag}: max |torch - exact| per row: " + ", ".join(f"{e:.3g}" for e in err))
