"""Reference vectors for constml's convolution and pooling chapter (conv2d,
max-pool, average pool, global average pool, and a tiny CNN trained one step
backward).

Run from the repository root:  python3 tests/reference/gen_conv.py
Writes tests/reference/conv.bin (CMLREF01, see refvec.py).

Storage conventions (shared with gen_nn.py and gen_norm.py): inputs are drawn
in float32 and stored as f32, so they are exact in both precisions. Every
output is computed twice by PyTorch from those same inputs, once in float32
(suffix /f32) and once after converting the inputs to float64 (suffix /f64).
Gradients are the autograd gradients of the scalar sum(out * dy), with a stored
random dy shaped like the output (the CNN case instead differentiates its
cross-entropy loss). Integers (shape parameters, indices, targets) are i64;
scalars are stored with shape (1). Each section reseeds torch from its own
fixed seed, so a section added later leaves the others' draws unchanged.

Layouts are PyTorch's: images (N, C, H, W) in row-major order, conv weights
(C_OUT, C_IN / groups, KH, KW), conv bias (C_OUT).

Output sizes
  Convolution (F.conv2d), per spatial dimension with input size L, kernel k,
  stride s, padding p (zeros on both sides) and dilation d:
      L_out = floor((L + 2p - d (k - 1) - 1) / s) + 1
  Pooling uses the same expression with d = 1 in floor mode. With
  ceil_mode=True the division rounds up instead,
      L_out = floor((L + 2p - (k - 1) - 1 + (s - 1)) / s) + 1,
  and then one further rule applies (ATen's pooling_output_shape_pad_lr in
  ATen/native/Pool.h, also stated in the nn.MaxPool2d / nn.AvgPool2d notes):
  a window may hang off the bottom/right edge only if it starts inside the
  input or inside the top/left padding. If the last window would start in the
  bottom/right padding, i.e. (L_out - 1) * s >= L + p, it is dropped and L_out
  is reduced by one. Pooling also requires p <= k / 2 (integer division).

Conv2d cases (F.conv2d). Per case conv/{case}/:
  x (N, C_IN, H, W), weight (C_OUT, C_IN/groups, KH, KW), bias (C_OUT) (only
  when the case has a bias), dy (N, C_OUT, H_out, W_out),
  params i64 [N, C_IN, H, W, C_OUT, KH, KW, stride_h, stride_w, pad_h, pad_w,
              dil_h, dil_w, groups, has_bias],
  out, dx, dweight, and dbias (only with a bias), each /f32 and /f64.
  With groups g, output channel o reads the input channels of group
  o // (C_OUT / g), i.e. input channels [grp * C_IN/g, (grp + 1) * C_IN/g).
  cases u8 text: the full names of the conv cases below, comma-separated, in
  this order.
    s{S}_p{P}_d{D} for S in {1, 2}, P in {0, 1}, D in {1, 2} (eight cases, in
        the order s1_p0_d1, s1_p0_d2, s1_p1_d1, s1_p1_d2, s2_p0_d1, ...):
        N 2, C_IN 3, C_OUT 4, H 7, W 6, kernel 3x3, groups 1, bias. Stride,
        padding and dilation are the same in both directions.
    groups2     N 2, C_IN 4, C_OUT 6, groups 2, kernel 3x2 (KH 3, KW 2),
                stride (1, 2), padding (1, 0), dilation 1, H 6, W 7, bias;
                output (2, 6, 6, 3).
    depthwise   N 1, C_IN 3, C_OUT 6, groups 3 (two output channels per input
                channel: outputs 2c and 2c+1 read input channel c), kernel 3x3,
                stride 1, padding 1, H 5, W 5, bias.
    nobias_1x1  N 2, C_IN 5, C_OUT 3, kernel 1x1, stride 2, padding 0, H 5,
                W 4, no bias (no bias / dbias entries); output (2, 3, 3, 2).
    big         N 1, C_IN 3, C_OUT 8, H 12, W 12, kernel 3x3, stride 1,
                padding 1, bias; output (1, 8, 12, 12).
  Every conv case is also checked here against a direct float64 loop
  convolution (forward and both backward products) written in numpy.

Max-pool (F.max_pool2d(x, kernel, stride, padding, ceil_mode=...,
return_indices=True)). Per case maxpool/{case}/:
  x, dy, params i64 [kh, kw, sh, sw, ph, pw, ceil_mode],
  out, indices, dx, each /f32 and /f64. indices is i64 with the shape of out:
  the flat position h * W + w of the selected element within its own (H, W)
  plane (not counting n or c). The indices of the two precisions are asserted
  equal (the comparisons are on the same f32-exact values). Padding never
  wins: padded positions behave as -inf, so each window's maximum is taken
  over its part inside the input. dx is dy scattered to the selected
  positions; where windows overlap, an element picked by several windows
  receives the sum of their dy.
    k2s2        kernel 2, stride 2, padding 0, input (2, 3, 6, 6).
    k3s2p1      kernel 3, stride 2, padding 1, input (1, 2, 7, 7); output 4x4.
    k3s2_ceil   kernel 3, stride 2, padding 0, ceil_mode, input (1, 2, 8, 8):
                4x4 (floor mode would give 3x3); the extra last window starts
                at row/column 6, inside the input, and covers 6, 7 and the
                non-existent 8, so it is kept (asserted).
    k2s2p1_ceil kernel 2, stride 2, padding 1, ceil_mode, input (1, 1, 5, 5)
                (the size from the brief, verified to work): the rounded-up
                size is floor((5 + 2 - 2 + 1) / 2) + 1 = 4, but the 4th window
                would start at position 6 of the padded row (input position 5,
                the right padding column): (4 - 1) * 2 = 6 >= L + p = 6, so
                PyTorch drops it and the output is 3x3. The generator computes both sizes and
                asserts that they differ (4 without the rule, 3 with it) and
                that PyTorch's output is 3x3.
    ties        kernel 2, stride 1, padding 0, input (1, 1, 4, 4) written by
                hand with values in {0, 0.5, 1}:
                    1.0 1.0 0.5 1.0
                    1.0 0.5 1.0 0.0
                    0.5 1.0 1.0 1.0
                    0.0 1.0 1.0 1.0
                Every one of the 9 windows has a tied maximum: two are all
                equal, the others tie along a row, a column, a diagonal or an
                anti-diagonal. Tie rule, as observed and asserted for every
                window: the CPU kernel scans a window row by row, left to
                right, and replaces its running maximum only on a strictly
                greater value, so among equal maxima the FIRST one in row-major
                order wins (the smallest flat index h * W + w). The indices are
                [[0, 1, 3], [4, 6, 6], [9, 9, 10]]; a column-major scan would
                give 6 instead of 3 at window (0, 2) and 9 instead of 6 at
                (1, 1). Elements 6 and 9 are each chosen by two windows, so
                their dx is a sum of two dy values. (NaN would also replace the
                running maximum; no NaN is stored.)
  Each max-pool case is also checked against a numpy loop that applies
  exactly this first-maximum rule (out, indices and dx).

Average pool (F.avg_pool2d(x, kernel, stride, padding, ceil_mode=...,
count_include_pad=...), no divisor_override). Per case avgpool/{case}/:
  x, dy, params i64 [kh, kw, sh, sw, ph, pw, ceil_mode, count_include_pad],
  out, dx, each /f32 and /f64.
  Divisor, per output position and per dimension (the same for rows and
  columns, the 2-D divisor being the product), as ATen's CPU kernel computes
  it: with start = o * s - p,
      end_pad = min(start + k, L + p)     window clipped to the PADDED extent
      divisor with count_include_pad     = end_pad - start
      divisor without count_include_pad  = min(end_pad, L) - max(start, 0)
                                           (only the real input elements)
  So count_include_pad counts the zero padding, but NOT the part of a ceil-mode
  window that hangs beyond the padded extent: such a window divides by less
  than kh * kw. The sum always runs over the real input elements only. The
  backward spreads dy[o] / divisor[o] over the real input elements of window
  o, the same divisor as the forward.
    k3s2p1_incl       kernel 3, stride 2, padding 1, count_include_pad, input
                      (1, 2, 7, 7): output 4x4, every divisor 9.
    k3s2p1_excl       the same x and dy as k3s2p1_incl (stored again under this
                      name, so every case is self-contained),
                      count_include_pad=False: divisors 4 in the corners, 6 on
                      the edges, 9 inside.
    k3s2p1_ceil_incl  kernel 3, stride 2, padding 1, ceil_mode,
                      count_include_pad, input (1, 2, 8, 8): output 5x5 (4x4 in
                      floor mode). The last row/column window starts at 7 and
                      would end at 10, but the padded extent ends at 9, so per
                      dimension it spans 2 (one real element and one padding
                      element) and the divisors of the last row are 6 (2 x 3),
                      the bottom-right corner 4 (2 x 2), not 9.
    k3s2p1_ceil_excl  the same x and dy (stored again), count_include_pad=False:
                      the last row/column spans one real element, so the divisor
                      is 3 on the last row and column edges, 2 at the bottom-left
                      and top-right corners and 1 at the bottom-right, 4 top-left.
    k2s2              kernel 2, stride 2, padding 0, input (2, 3, 6, 6): every
                      divisor 4.
  All five cases are checked against a numpy loop using the divisor rule above
  (forward and backward), and the ceil cases' divisor grids are asserted to be
  the values listed.

Global average pool (F.adaptive_avg_pool2d(x, 1))
  gap/x (2, 3, 4, 5), gap/dy (2, 3, 1, 1); gap/out (2, 3, 1, 1) is the mean of
  each 4x5 plane, gap/dx = dy / 20 broadcast over the plane; /f32 and /f64.

Tiny CNN, forward and backward (one example batch)
  cnn/x (2, 1, 8, 8), cnn/target i64 [3, 7].
  Model: conv(1 -> 4, 3x3, padding 1) -> ReLU -> max-pool 2 (stride 2)
         -> conv(4 -> 8, 3x3, padding 1) -> ReLU -> max-pool 2
         -> flatten (N, 8 * 2 * 2 = 32, in (C, H, W) order) -> linear(32 -> 10),
         loss F.cross_entropy (mean over the 2 samples).
  Parameters (f32): cnn/c1w (4, 1, 3, 3), cnn/c1b (4), cnn/c2w (8, 4, 3, 3),
  cnn/c2b (8), cnn/fcw (10, 32), cnn/fcb (10).
  Outputs, /f32 and /f64: cnn/logits (2, 10), cnn/loss (1), and the loss
  gradients cnn/dc1w, cnn/dc1b, cnn/dc2w, cnn/dc2b, cnn/dfcw, cnn/dfcb.
  Asserted so that the result does not depend on conventions: no conv
  pre-activation is exactly 0 (ReLU's slope at 0 is never used), and every
  pooling window whose maximum is tied has the tie at 0 (a window of all dead
  ReLUs), where the chosen position has zero gradient anyway.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

OUT = {}
PRECISIONS = (("f32", torch.float32), ("f64", torch.float64))


def put(name, a):
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    assert name not in OUT, name
    # Always a copy: numpy() shares memory with the tensor it came from.
    OUT[name] = np.array(a, copy=True, order="C")


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def i64(values):
    return torch.tensor(values, dtype=torch.int64)


def scalar(t):
    return t.detach().reshape(1)


def leaf(t, dt):
    """A fresh leaf tensor in dtype dt that records its gradient."""
    return t.to(dt).clone().requires_grad_(True)


def pool_out_size(length, k, s, p, ceil_mode, drop_rule=True):
    """Pooling output length (dilation 1); drop_rule=False skips ceil mode's
    'last window must start inside the input or the left padding' rule."""
    num = length + 2 * p - (k - 1) - 1 + ((s - 1) if ceil_mode else 0)
    n = num // s + 1
    if ceil_mode and drop_rule and (n - 1) * s >= length + p:
        n -= 1
    return n


def close(a, b, tol):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    err = np.max(np.abs(a - b)) if a.size else 0.0
    assert err <= tol * max(1.0, np.max(np.abs(b))), err


# ---------------------------------------------------------------- numpy references (f64 loops)
def np_conv(x, w, b, stride, pad, dil, groups, dy):
    """Direct convolution and its two backward products, in float64 loops."""
    x, w, dy = (np.asarray(a, dtype=np.float64) for a in (x, w, dy))
    n_, c_in, h, wd = x.shape
    c_out, cpg, kh, kw = w.shape
    opg = c_out // groups
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n_, c_out, ho, wo))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(n_):
        for o in range(c_out):
            grp = o // opg
            for oh in range(ho):
                for ow in range(wo):
                    acc = 0.0 if b is None else float(b[o])
                    g = dy[n, o, oh, ow]
                    for ci in range(cpg):
                        c = grp * cpg + ci
                        for i in range(kh):
                            for j in range(kw):
                                r, q = oh * stride[0] + i * dil[0], ow * stride[1] + j * dil[1]
                                acc += xp[n, c, r, q] * w[o, ci, i, j]
                                dxp[n, c, r, q] += g * w[o, ci, i, j]
                                dw[o, ci, i, j] += g * xp[n, c, r, q]
                    out[n, o, oh, ow] = acc
    dx = dxp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd]
    db = dy.sum(axis=(0, 2, 3))
    return out, dx, dw, db


def np_maxpool(x, k, s, p, ceil_mode, dy):
    """Max-pool with the first-maximum (row-major, strict >) tie rule."""
    x, dy = np.asarray(x, dtype=np.float64), np.asarray(dy, dtype=np.float64)
    n_, c_, h, w = x.shape
    ho = pool_out_size(h, k[0], s[0], p[0], ceil_mode)
    wo = pool_out_size(w, k[1], s[1], p[1], ceil_mode)
    out = np.zeros((n_, c_, ho, wo))
    idx = np.zeros((n_, c_, ho, wo), dtype=np.int64)
    dx = np.zeros_like(x)
    for n in range(n_):
        for c in range(c_):
            for oh in range(ho):
                for ow in range(wo):
                    best, arg = -np.inf, -1
                    for r in range(max(oh * s[0] - p[0], 0), min(oh * s[0] - p[0] + k[0], h)):
                        for q in range(max(ow * s[1] - p[1], 0), min(ow * s[1] - p[1] + k[1], w)):
                            if x[n, c, r, q] > best:
                                best, arg = x[n, c, r, q], r * w + q
                    out[n, c, oh, ow], idx[n, c, oh, ow] = best, arg
                    dx[n, c, arg // w, arg % w] += dy[n, c, oh, ow]
    return out, idx, dx


def avg_divisor(o, k, s, p, length, include_pad):
    start = o * s - p
    end_pad = min(start + k, length + p)
    if include_pad:
        return end_pad - start
    return min(end_pad, length) - max(start, 0)


def np_avgpool(x, k, s, p, ceil_mode, include_pad, dy):
    """Average pool with ATen's divisor rule; returns out, dx and the divisor grid."""
    x, dy = np.asarray(x, dtype=np.float64), np.asarray(dy, dtype=np.float64)
    n_, c_, h, w = x.shape
    ho = pool_out_size(h, k[0], s[0], p[0], ceil_mode)
    wo = pool_out_size(w, k[1], s[1], p[1], ceil_mode)
    div = np.zeros((ho, wo), dtype=np.int64)
    out = np.zeros((n_, c_, ho, wo))
    dx = np.zeros_like(x)
    for oh in range(ho):
        for ow in range(wo):
            div[oh, ow] = (avg_divisor(oh, k[0], s[0], p[0], h, include_pad)
                           * avg_divisor(ow, k[1], s[1], p[1], w, include_pad))
            r0, r1 = max(oh * s[0] - p[0], 0), min(oh * s[0] - p[0] + k[0], h)
            q0, q1 = max(ow * s[1] - p[1], 0), min(ow * s[1] - p[1] + k[1], w)
            out[:, :, oh, ow] = x[:, :, r0:r1, q0:q1].sum(axis=(2, 3)) / div[oh, ow]
            dx[:, :, r0:r1, q0:q1] += (dy[:, :, oh, ow] / div[oh, ow])[:, :, None, None]
    return out, dx, div


# ---------------------------------------------------------------- conv2d
CONV_CASES = {}
for s in (1, 2):
    for p in (0, 1):
        for d in (1, 2):
            CONV_CASES[f"s{s}_p{p}_d{d}"] = dict(n=2, c_in=3, h=7, w=6, c_out=4, k=(3, 3), stride=(s, s),
                                                 pad=(p, p), dil=(d, d), groups=1, bias=True)
CONV_CASES["groups2"] = dict(n=2, c_in=4, h=6, w=7, c_out=6, k=(3, 2), stride=(1, 2), pad=(1, 0), dil=(1, 1),
                             groups=2, bias=True)
CONV_CASES["depthwise"] = dict(n=1, c_in=3, h=5, w=5, c_out=6, k=(3, 3), stride=(1, 1), pad=(1, 1), dil=(1, 1),
                               groups=3, bias=True)
CONV_CASES["nobias_1x1"] = dict(n=2, c_in=5, h=5, w=4, c_out=3, k=(1, 1), stride=(2, 2), pad=(0, 0), dil=(1, 1),
                                groups=1, bias=False)
CONV_CASES["big"] = dict(n=1, c_in=3, h=12, w=12, c_out=8, k=(3, 3), stride=(1, 1), pad=(1, 1), dil=(1, 1),
                         groups=1, bias=True)

torch.manual_seed(10101)
put("cases", refvec.text(",".join(f"conv/{c}" for c in CONV_CASES)))
for case, cfg in CONV_CASES.items():
    pre = f"conv/{case}"
    kh, kw = cfg["k"]
    x = randn(cfg["n"], cfg["c_in"], cfg["h"], cfg["w"])
    w = 0.4 * randn(cfg["c_out"], cfg["c_in"] // cfg["groups"], kh, kw)
    b = 0.2 * randn(cfg["c_out"]) if cfg["bias"] else None
    ho = (cfg["h"] + 2 * cfg["pad"][0] - cfg["dil"][0] * (kh - 1) - 1) // cfg["stride"][0] + 1
    wo = (cfg["w"] + 2 * cfg["pad"][1] - cfg["dil"][1] * (kw - 1) - 1) // cfg["stride"][1] + 1
    assert ho >= 1 and wo >= 1, case
    dy = randn(cfg["n"], cfg["c_out"], ho, wo)
    put(f"{pre}/x", x)
    put(f"{pre}/weight", w)
    if b is not None:
        put(f"{pre}/bias", b)
    put(f"{pre}/dy", dy)
    put(f"{pre}/params", i64([cfg["n"], cfg["c_in"], cfg["h"], cfg["w"], cfg["c_out"], kh, kw,
                              *cfg["stride"], *cfg["pad"], *cfg["dil"], cfg["groups"], int(cfg["bias"])]))
    for tag, dt in PRECISIONS:
        xl, wl = leaf(x, dt), leaf(w, dt)
        bl = leaf(b, dt) if b is not None else None
        out = F.conv2d(xl, wl, bl, stride=cfg["stride"], padding=cfg["pad"], dilation=cfg["dil"],
                       groups=cfg["groups"])
        assert out.shape == dy.shape, (case, out.shape)
        (out * dy.to(dt)).sum().backward()
        put(f"{pre}/out/{tag}", out)
        put(f"{pre}/dx/{tag}", xl.grad)
        put(f"{pre}/dweight/{tag}", wl.grad)
        if bl is not None:
            put(f"{pre}/dbias/{tag}", bl.grad)
    ref_out, ref_dx, ref_dw, ref_db = np_conv(x.numpy(), w.numpy(), None if b is None else b.numpy(),
                                              cfg["stride"], cfg["pad"], cfg["dil"], cfg["groups"], dy.numpy())
    for tag, tol in (("f64", 1e-12), ("f32", 1e-5)):
        close(OUT[f"{pre}/out/{tag}"], ref_out, tol)
        close(OUT[f"{pre}/dx/{tag}"], ref_dx, tol)
        close(OUT[f"{pre}/dweight/{tag}"], ref_dw, tol)
        if b is not None:
            close(OUT[f"{pre}/dbias/{tag}"], ref_db, tol)
assert OUT["conv/groups2/out/f32"].shape == (2, 6, 6, 3)
assert OUT["conv/nobias_1x1/out/f32"].shape == (2, 3, 3, 2)

# ---------------------------------------------------------------- max-pool
MAXPOOL_CASES = {
    "k2s2": dict(shape=(2, 3, 6, 6), k=2, s=2, p=0, ceil=False),
    "k3s2p1": dict(shape=(1, 2, 7, 7), k=3, s=2, p=1, ceil=False),
    "k3s2_ceil": dict(shape=(1, 2, 8, 8), k=3, s=2, p=0, ceil=True),
    "k2s2p1_ceil": dict(shape=(1, 1, 5, 5), k=2, s=2, p=1, ceil=True),
    "ties": dict(shape=(1, 1, 4, 4), k=2, s=1, p=0, ceil=False),
}
# k3s2_ceil: ceil mode adds a window, and that window starts inside the input.
_n = pool_out_size(8, 3, 2, 0, True)
assert _n == 4 and pool_out_size(8, 3, 2, 0, False) == 3 and (_n - 1) * 2 - 0 < 8
# k2s2p1_ceil: the drop rule changes the size (4 -> 3).
assert pool_out_size(5, 2, 2, 1, True, drop_rule=False) == 4
assert pool_out_size(5, 2, 2, 1, True) == 3

# Written by hand so that every window's maximum is tied, in all directions.
TIES_X = torch.tensor([[1.0, 1.0, 0.5, 1.0],
                       [1.0, 0.5, 1.0, 0.0],
                       [0.5, 1.0, 1.0, 1.0],
                       [0.0, 1.0, 1.0, 1.0]], dtype=torch.float32)
torch.manual_seed(10201)
for case, cfg in MAXPOOL_CASES.items():
    pre = f"maxpool/{case}"
    if case == "ties":
        x = TIES_X.reshape(cfg["shape"]).clone()
    else:
        x = randn(*cfg["shape"])
    k, s, p = (cfg["k"],) * 2, (cfg["s"],) * 2, (cfg["p"],) * 2
    ho = pool_out_size(cfg["shape"][2], cfg["k"], cfg["s"], cfg["p"], cfg["ceil"])
    wo = pool_out_size(cfg["shape"][3], cfg["k"], cfg["s"], cfg["p"], cfg["ceil"])
    dy = randn(cfg["shape"][0], cfg["shape"][1], ho, wo)
    put(f"{pre}/x", x)
    put(f"{pre}/dy", dy)
    put(f"{pre}/params", i64([*k, *s, *p, int(cfg["ceil"])]))
    for tag, dt in PRECISIONS:
        xl = leaf(x, dt)
        out, idx = F.max_pool2d(xl, k, s, p, ceil_mode=cfg["ceil"], return_indices=True)
        assert out.shape == dy.shape, (case, out.shape)
        (out * dy.to(dt)).sum().backward()
        put(f"{pre}/out/{tag}", out)
        put(f"{pre}/indices/{tag}", idx)
        put(f"{pre}/dx/{tag}", xl.grad)
    assert np.array_equal(OUT[f"{pre}/indices/f32"], OUT[f"{pre}/indices/f64"])
    ref_out, ref_idx, ref_dx = np_maxpool(x.numpy(), k, s, p, cfg["ceil"], dy.numpy())
    assert np.array_equal(OUT[f"{pre}/indices/f32"], ref_idx), case
    assert np.array_equal(OUT[f"{pre}/out/f64"], ref_out), case
    close(OUT[f"{pre}/dx/f64"], ref_dx, 1e-15)
    close(OUT[f"{pre}/dx/f32"], ref_dx, 1e-6)
assert OUT["maxpool/k2s2p1_ceil/out/f32"].shape == (1, 1, 3, 3)
assert OUT["maxpool/k3s2_ceil/out/f32"].shape == (1, 2, 4, 4)
# Padding never wins: an all-negative input keeps its negative maxima at the borders.
assert (F.max_pool2d(-torch.ones(1, 1, 3, 3), 3, 2, 1) == -1).all()
# The tie case really has ties: count windows whose maximum occurs more than once.
_tx = OUT["maxpool/ties/x"][0, 0]
_windows = [_tx[r:r + 2, q:q + 2] for r in range(3) for q in range(3)]
_tied = sum(int((wnd == wnd.max()).sum() > 1) for wnd in _windows)
_flat = sum(int((wnd == wnd.max()).all()) for wnd in _windows)
assert _tied == 9 and _flat == 2, (_tied, _flat)
# Row-major first, not column-major first (windows (0, 2) and (1, 1) tell them apart).
assert OUT["maxpool/ties/indices/f32"][0, 0].tolist() == [[0, 1, 3], [4, 6, 6], [9, 9, 10]]

# ---------------------------------------------------------------- average pool
AVGPOOL_CASES = {
    "k3s2p1_incl": dict(shape=(1, 2, 7, 7), k=3, s=2, p=1, ceil=False, incl=True),
    "k3s2p1_excl": dict(shape=(1, 2, 7, 7), k=3, s=2, p=1, ceil=False, incl=False),
    "k3s2p1_ceil_incl": dict(shape=(1, 2, 8, 8), k=3, s=2, p=1, ceil=True, incl=True),
    "k3s2p1_ceil_excl": dict(shape=(1, 2, 8, 8), k=3, s=2, p=1, ceil=True, incl=False),
    "k2s2": dict(shape=(2, 3, 6, 6), k=2, s=2, p=0, ceil=False, incl=True),
}
torch.manual_seed(10301)
_shared = {}  # the _incl / _excl pairs use the same x and dy
DIVISORS = {}
for case, cfg in AVGPOOL_CASES.items():
    pre = f"avgpool/{case}"
    key = (cfg["shape"], cfg["ceil"], cfg["k"], cfg["p"])
    ho = pool_out_size(cfg["shape"][2], cfg["k"], cfg["s"], cfg["p"], cfg["ceil"])
    wo = pool_out_size(cfg["shape"][3], cfg["k"], cfg["s"], cfg["p"], cfg["ceil"])
    if key not in _shared:
        _shared[key] = (randn(*cfg["shape"]), randn(cfg["shape"][0], cfg["shape"][1], ho, wo))
    x, dy = _shared[key]
    k, s, p = (cfg["k"],) * 2, (cfg["s"],) * 2, (cfg["p"],) * 2
    put(f"{pre}/x", x)
    put(f"{pre}/dy", dy)
    put(f"{pre}/params", i64([*k, *s, *p, int(cfg["ceil"]), int(cfg["incl"])]))
    for tag, dt in PRECISIONS:
        xl = leaf(x, dt)
        out = F.avg_pool2d(xl, k, s, p, ceil_mode=cfg["ceil"], count_include_pad=cfg["incl"])
        assert out.shape == dy.shape, (case, out.shape)
        (out * dy.to(dt)).sum().backward()
        put(f"{pre}/out/{tag}", out)
        put(f"{pre}/dx/{tag}", xl.grad)
    ref_out, ref_dx, div = np_avgpool(x.numpy(), k, s, p, cfg["ceil"], cfg["incl"], dy.numpy())
    DIVISORS[case] = div
    close(OUT[f"{pre}/out/f64"], ref_out, 1e-14)
    close(OUT[f"{pre}/dx/f64"], ref_dx, 1e-14)
    close(OUT[f"{pre}/out/f32"], ref_out, 1e-6)
    close(OUT[f"{pre}/dx/f32"], ref_dx, 1e-6)
# The divisor grids documented above.
assert (DIVISORS["k3s2p1_incl"] == 9).all()
assert (DIVISORS["k2s2"] == 4).all()
assert DIVISORS["k3s2p1_excl"].tolist() == [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]
_ci = DIVISORS["k3s2p1_ceil_incl"]
assert _ci.shape == (5, 5) and pool_out_size(8, 3, 2, 1, False) == 4
assert (_ci[:4, :4] == 9).all() and (_ci[4, :4] == 6).all() and (_ci[:4, 4] == 6).all() and _ci[4, 4] == 4
assert DIVISORS["k3s2p1_ceil_excl"].tolist() == [[4, 6, 6, 6, 2], [6, 9, 9, 9, 3], [6, 9, 9, 9, 3],
                                                 [6, 9, 9, 9, 3], [2, 3, 3, 3, 1]]
# With all-ones input the include-pad output is (real elements) / divisor, which
# pins the clipped divisor directly, independently of the loop above.
_ones = F.avg_pool2d(torch.ones(1, 1, 8, 8, dtype=torch.float64), 3, 2, 1, ceil_mode=True, count_include_pad=True)
assert _ones[0, 0, 4, 4].item() == 1 / 4 and _ones[0, 0, 4, 2].item() == 3 / 6 and _ones[0, 0, 0, 0].item() == 4 / 9

# ---------------------------------------------------------------- global average pool
torch.manual_seed(10401)
gap_x, gap_dy = randn(2, 3, 4, 5), randn(2, 3, 1, 1)
put("gap/x", gap_x)
put("gap/dy", gap_dy)
for tag, dt in PRECISIONS:
    xl = leaf(gap_x, dt)
    out = F.adaptive_avg_pool2d(xl, 1)
    (out * gap_dy.to(dt)).sum().backward()
    put(f"gap/out/{tag}", out)
    put(f"gap/dx/{tag}", xl.grad)
close(OUT["gap/out/f64"], gap_x.double().mean(dim=(2, 3), keepdim=True).numpy(), 1e-15)
close(OUT["gap/dx/f64"], (gap_dy.double() / 20).expand(2, 3, 4, 5).numpy(), 1e-15)

# ---------------------------------------------------------------- tiny CNN
torch.manual_seed(10501)
cnn_x = randn(2, 1, 8, 8)
cnn_target = i64([3, 7])
cnn_params = {
    "c1w": 0.5 * randn(4, 1, 3, 3), "c1b": 0.1 * randn(4),
    "c2w": 0.25 * randn(8, 4, 3, 3), "c2b": 0.1 * randn(8),
    "fcw": 0.3 * randn(10, 32), "fcb": 0.1 * randn(10),
}
put("cnn/x", cnn_x)
put("cnn/target", cnn_target)
for n, v in cnn_params.items():
    put(f"cnn/{n}", v)


def check_pool_ties(a):
    """Every 2x2 window whose maximum is tied must be tied at 0."""
    a = a.detach()
    wins = a.unfold(2, 2, 2).unfold(3, 2, 2).reshape(*a.shape[:2], a.shape[2] // 2, a.shape[3] // 2, 4)
    mx = wins.max(dim=-1, keepdim=True).values
    tied = (wins == mx).sum(dim=-1) > 1
    assert (mx.squeeze(-1)[tied] == 0).all(), "a pooling window has a tie at a non-zero value"


for tag, dt in PRECISIONS:
    p = {n: leaf(v, dt) for n, v in cnn_params.items()}
    z1 = F.conv2d(cnn_x.to(dt), p["c1w"], p["c1b"], padding=1)
    assert (z1 != 0).all()
    a1 = F.relu(z1)
    check_pool_ties(a1)
    h1 = F.max_pool2d(a1, 2)
    z2 = F.conv2d(h1, p["c2w"], p["c2b"], padding=1)
    assert (z2 != 0).all()
    a2 = F.relu(z2)
    check_pool_ties(a2)
    h2 = F.max_pool2d(a2, 2)
    assert h2.shape == (2, 8, 2, 2)
    logits = F.linear(h2.flatten(1), p["fcw"], p["fcb"])
    loss = F.cross_entropy(logits, cnn_target)
    loss.backward()
    put(f"cnn/logits/{tag}", logits)
    put(f"cnn/loss/{tag}", scalar(loss))
    for n in cnn_params:
        assert p[n].grad.abs().sum() > 0, n  # every layer receives gradient
        put(f"cnn/d{n}/{tag}", p[n].grad)

# ---------------------------------------------------------------- write
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "conv.bin")
refvec.write(path, OUT, meta=f"tests/reference/gen_conv.py; {refvec.versions()}")
print(f"wrote {path}: {len(OUT) + 1} entries, {os.path.getsize(path)} bytes")
