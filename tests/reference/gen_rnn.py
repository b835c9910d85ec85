"""Reference vectors for constml's recurrent layers: PyTorch's nn.RNN (tanh and
relu), nn.LSTM and nn.GRU, one layer, one direction, batch_first=True, forward
and autograd backward through time.

Run from the repository root:  python3 tests/reference/gen_rnn.py
Writes tests/reference/rnn.bin (CMLREF01, see refvec.py).

Storage conventions (the same as gen_conv.py): inputs (weights, biases, x,
initial states and upstream gradients) are drawn in float32 and stored as f32,
so they are exact in both precisions. Every output is computed twice by
PyTorch from those same inputs, once in float32 (suffix /f32) and once after
converting the inputs and the module's parameters to float64 (suffix /f64).
Integers are i64. Each case reseeds torch from its own fixed seed, so a case
added later leaves the others' draws unchanged.

Sizes: N batch, S sequence length (steps), I input features, H hidden size,
G gate blocks (1 for both RNNs, 4 for the LSTM, 3 for the GRU).

Layouts are PyTorch's (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0):
  w_ih (G*H, I), w_hh (G*H, H), b_ih (G*H), b_hh (G*H). Rows [k*H, (k+1)*H)
  belong to gate block k, in PyTorch's gate order:
    RNN   one block;
    LSTM  i, f, g, o   (input, forget, cell candidate, output);
    GRU   r, z, n      (reset, update, new).
  Sequences are batch-first: x (N, S, I), out (N, S, H). PyTorch takes and
  returns states shaped (num_layers = 1, N, H); they are stored as (N, H).

Cell equations for one step, with x the step's input row, h (and c) the
previous state, sigma the logistic function and * the elementwise product:
  ax = W_ih x + b_ih,  ah = W_hh h + b_hh  (both G*H long, split into blocks;
  without bias, both biases are zero)
  rnn_tanh  h' = tanh(ax + ah)
  rnn_relu  h' = max(0, ax + ah)
  lstm      i = sigma(ax_i + ah_i), f = sigma(ax_f + ah_f),
            g = tanh(ax_g + ah_g),  o = sigma(ax_o + ah_o),
            c' = f * c + i * g,  h' = o * tanh(c')
  gru       r = sigma(ax_r + ah_r), z = sigma(ax_z + ah_z),
            n = tanh(ax_n + r * ah_n)     (r multiplies W_hn h + b_hn, bias
                                           included; b_in is outside)
            h' = (1 - z) * n + z * h
out[:, t] is h after step t; h_n = out[:, S-1]; c_n is the LSTM's final cell.
Without an initial state (the _zero cases) h0 = c0 = 0, as PyTorch does when
no state is passed.

Gradients are the autograd gradients of the scalar
    L = sum(out * dout) + sum(h_n * dh_n)          (RNN, GRU)
    L = sum(out * dout) + sum(h_n * dh_n) + sum(c_n * dc_n)   (LSTM)
with the stored random upstream gradients dout, dh_n and dc_n. Note that h_n
equals out[:, S-1], so the last step's hidden state receives
dout[:, S-1] + dh_n.

Per case, under rnn/{case}/:
  params i64 [N, S, I, H, has_bias, has_init, kind], kind 0 = rnn_tanh,
         1 = rnn_relu, 2 = lstm, 3 = gru.
  w_ih (G*H, I), w_hh (G*H, H): uniform in [-0.6, 0.6).
  b_ih (G*H), b_hh (G*H): only when has_bias; uniform in [-0.6, 0.6).
  x (N, S, I): standard normal.
  h0 (N, H), and for the LSTM c0 (N, H): only when has_init; normal x 0.5.
  dout (N, S, H), dh_n (N, H), and for the LSTM dc_n (N, H): standard normal.
  Outputs, each /f32 and /f64:
    out (N, S, H), h_n (N, H), c_n (N, H) (LSTM only),
    dx (N, S, I), dw_ih (G*H, I), dw_hh (G*H, H),
    db_ih (G*H), db_hh (G*H) (only with bias),
    dh0 (N, H) and dc0 (N, H) (LSTM) (only when has_init).
Draw order within a case: w_ih, w_hh, b_ih, b_hh, x, h0, c0, dout, dh_n, dc_n
(skipping those the case does not have).

cases u8 text: the case names (without the rnn/ prefix), comma-separated, in
this order:
  rnn_tanh_init, rnn_tanh_zero   nn.RNN(nonlinearity='tanh')
  rnn_relu_init, rnn_relu_zero   nn.RNN(nonlinearity='relu')
  lstm_init, lstm_zero           nn.LSTM
  gru_init, gru_zero             nn.GRU
      all eight: N 2, S 4, I 3, H 5, bias; _init passes h0 (and c0), _zero
      passes no state.
  lstm_nobias, gru_nobias        N 2, S 4, I 3, H 5, bias=False, state given.
  lstm_long                      N 1, S 12, I 4, H 8, bias, state given.

Checks made before writing: every case's float64 results (outputs and all
gradients) are compared with an independent float64 numpy implementation of
the four cells, forward and backward through time written out by hand (no
autograd), to a tolerance of 1e-10 (relative to max(1, max |value|)); the
float32 results are compared with it to 1e-5. For the relu cases, no
pre-activation is within 1e-4 of 0, so the slope of ReLU at 0 never matters
(in either precision).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

torch.set_num_threads(1)

OUT = {}
PRECISIONS = (("f32", torch.float32), ("f64", torch.float64))
KINDS = {"rnn_tanh": (0, 1), "rnn_relu": (1, 1), "lstm": (2, 4), "gru": (3, 3)}  # kind -> (code, G)


def put(name, a):
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    assert name not in OUT, name
    # A copy, never a view of a tensor's memory.
    OUT[name] = np.array(a, copy=True, order="C")


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def uniform(*shape, bound=0.6):
    t = torch.empty(*shape, dtype=torch.float32).uniform_(-bound, bound)
    assert (t >= -bound).all() and (t < bound).all()
    return t


def i64(values):
    return torch.tensor(values, dtype=torch.int64)


def leaf(t, dt):
    """A fresh leaf tensor in dtype dt that records its gradient."""
    return t.to(dt).clone().requires_grad_(True)


def close(a, b, tol, what=""):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    err = np.max(np.abs(a - b)) if a.size else 0.0
    assert err <= tol * max(1.0, np.max(np.abs(b))), (what, err)


# ---------------------------------------------------------------- numpy reference (f64, by hand)
def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def np_rnn(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, dout, dh_n, dc_n):
    """Forward over all steps, then backpropagation through time of
    L = sum(out*dout) + sum(h_n*dh_n) (+ sum(c_n*dc_n)). Returns a dict with
    out, h_n, c_n, dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0 and the minimum
    |pre-activation| (relu only)."""
    f64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = map(f64, (x, h0, c0, w_ih, w_hh, b_ih, b_hh))
    dout, dh_n, dc_n = map(f64, (dout, dh_n, dc_n))
    n_, s_, _ = x.shape
    hid = w_hh.shape[1]
    if b_ih is None:
        b_ih = np.zeros(w_ih.shape[0])
        b_hh = np.zeros(w_hh.shape[0])
    h = np.zeros((n_, hid)) if h0 is None else h0.copy()
    c = np.zeros((n_, hid)) if c0 is None else c0.copy()
    out = np.zeros((n_, s_, hid))
    cache = []
    min_pre = np.inf
    blk = lambda a, k: a[:, k * hid:(k + 1) * hid]  # noqa: E731
    for t in range(s_):
        ax = x[:, t] @ w_ih.T + b_ih
        ah = h @ w_hh.T + b_hh
        if kind == "rnn_tanh":
            h_new = np.tanh(ax + ah)
            cache.append(dict(h=h, hn=h_new))
        elif kind == "rnn_relu":
            pre = ax + ah
            min_pre = min(min_pre, np.min(np.abs(pre)))
            h_new = np.maximum(pre, 0.0)
            cache.append(dict(h=h, pre=pre))
        elif kind == "lstm":
            pre = ax + ah
            i, f = sigmoid(blk(pre, 0)), sigmoid(blk(pre, 1))
            g, o = np.tanh(blk(pre, 2)), sigmoid(blk(pre, 3))
            c_new = f * c + i * g
            tc = np.tanh(c_new)
            h_new = o * tc
            cache.append(dict(h=h, c=c, i=i, f=f, g=g, o=o, tc=tc))
            c = c_new
        else:  # gru
            r = sigmoid(blk(ax, 0) + blk(ah, 0))
            z = sigmoid(blk(ax, 1) + blk(ah, 1))
            hn = blk(ah, 2)
            nn_ = np.tanh(blk(ax, 2) + r * hn)
            h_new = (1.0 - z) * nn_ + z * h
            cache.append(dict(h=h, r=r, z=z, n=nn_, hn=hn))
        h = h_new
        out[:, t] = h
    res = dict(out=out, h_n=h.copy(), c_n=c.copy() if kind == "lstm" else None, min_pre=min_pre)

    dx = np.zeros_like(x)
    dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    db_ih, db_hh = np.zeros_like(b_ih), np.zeros_like(b_hh)
    dh = dh_n.copy()  # gradient reaching h after the last step, from h_n
    dc = dc_n.copy() if kind == "lstm" else None
    for t in reversed(range(s_)):
        k = cache[t]
        dh = dh + dout[:, t]
        if kind == "rnn_tanh":
            dax = dh * (1.0 - k["hn"] ** 2)
            dah = dax
            dh_prev = np.zeros_like(dh)
        elif kind == "rnn_relu":
            dax = dh * (k["pre"] > 0)
            dah = dax
            dh_prev = np.zeros_like(dh)
        elif kind == "lstm":
            i, f, g, o, tc = k["i"], k["f"], k["g"], k["o"], k["tc"]
            do = dh * tc
            dct = dc + dh * o * (1.0 - tc ** 2)
            di, df, dg = dct * g, dct * k["c"], dct * i
            dc = dct * f
            dax = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)], axis=1)
            dah = dax
            dh_prev = np.zeros_like(dh)
        else:  # gru
            r, z, nn_, hn = k["r"], k["z"], k["n"], k["hn"]
            dn_pre = dh * (1.0 - z) * (1.0 - nn_ ** 2)
            dz_pre = dh * (k["h"] - nn_) * z * (1.0 - z)
            dr_pre = dn_pre * hn * r * (1.0 - r)
            dax = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)
            dah = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)
            dh_prev = dh * z  # the direct path h' = ... + z * h
        dx[:, t] = dax @ w_ih
        dw_ih += dax.T @ x[:, t]
        db_ih += dax.sum(axis=0)
        dw_hh += dah.T @ k["h"]
        db_hh += dah.sum(axis=0)
        dh = dh_prev + dah @ w_hh
    res.update(dx=dx, dw_ih=dw_ih, dw_hh=dw_hh, db_ih=db_ih, db_hh=db_hh, dh0=dh, dc0=dc)
    return res


# ---------------------------------------------------------------- cases
# name -> (kind, N, S, I, H, has_bias, has_init, seed)
CASES = {
    "rnn_tanh_init": ("rnn_tanh", 2, 4, 3, 5, True, True, 30101),
    "rnn_tanh_zero": ("rnn_tanh", 2, 4, 3, 5, True, False, 30102),
    "rnn_relu_init": ("rnn_relu", 2, 4, 3, 5, True, True, 30103),
    "rnn_relu_zero": ("rnn_relu", 2, 4, 3, 5, True, False, 30104),
    "lstm_init": ("lstm", 2, 4, 3, 5, True, True, 30105),
    "lstm_zero": ("lstm", 2, 4, 3, 5, True, False, 30106),
    "gru_init": ("gru", 2, 4, 3, 5, True, True, 30107),
    "gru_zero": ("gru", 2, 4, 3, 5, True, False, 30108),
    "lstm_nobias": ("lstm", 2, 4, 3, 5, False, True, 30109),
    "gru_nobias": ("gru", 2, 4, 3, 5, False, True, 30110),
    "lstm_long": ("lstm", 1, 12, 4, 8, True, True, 30111),
}


def make_module(kind, i_, h_, bias, dt):
    if kind in ("rnn_tanh", "rnn_relu"):
        return nn.RNN(i_, h_, num_layers=1, nonlinearity=kind[4:], bias=bias, batch_first=True, dtype=dt)
    cls = nn.LSTM if kind == "lstm" else nn.GRU
    return cls(i_, h_, num_layers=1, bias=bias, batch_first=True, dtype=dt)


put("cases", refvec.text(",".join(CASES)))
for case, (kind, n_, s_, i_, h_, bias, init, seed) in CASES.items():
    pre = f"rnn/{case}"
    code, g_ = KINDS[kind]
    is_lstm = kind == "lstm"
    torch.manual_seed(seed)
    inp = {"w_ih": uniform(g_ * h_, i_), "w_hh": uniform(g_ * h_, h_)}
    if bias:
        inp["b_ih"] = uniform(g_ * h_)
        inp["b_hh"] = uniform(g_ * h_)
    inp["x"] = randn(n_, s_, i_)
    if init:
        inp["h0"] = 0.5 * randn(n_, h_)
        if is_lstm:
            inp["c0"] = 0.5 * randn(n_, h_)
    inp["dout"] = randn(n_, s_, h_)
    inp["dh_n"] = randn(n_, h_)
    if is_lstm:
        inp["dc_n"] = randn(n_, h_)

    put(f"{pre}/params", i64([n_, s_, i_, h_, int(bias), int(init), code]))
    for k, v in inp.items():
        put(f"{pre}/{k}", v)

    for tag, dt in PRECISIONS:
        mod = make_module(kind, i_, h_, bias, dt)
        pnames = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}
        with torch.no_grad():
            for k, pn in pnames.items():
                if k in inp:
                    getattr(mod, pn).copy_(inp[k].to(dt))
        assert sorted(n for n, _ in mod.named_parameters()) == sorted(pnames[k] for k in pnames if k in inp)
        xl = leaf(inp["x"], dt)
        h0l = leaf(inp["h0"], dt) if init else None
        c0l = leaf(inp["c0"], dt) if init and is_lstm else None
        if is_lstm:
            out, (hn, cn) = mod(xl, (h0l.unsqueeze(0), c0l.unsqueeze(0))) if init else mod(xl)
            cn = cn.squeeze(0)
        else:
            out, hn = mod(xl, h0l.unsqueeze(0)) if init else mod(xl)
            cn = None
        hn = hn.squeeze(0)
        assert out.shape == (n_, s_, h_) and hn.shape == (n_, h_)
        loss = (out * inp["dout"].to(dt)).sum() + (hn * inp["dh_n"].to(dt)).sum()
        if is_lstm:
            loss = loss + (cn * inp["dc_n"].to(dt)).sum()
        loss.backward()
        put(f"{pre}/out/{tag}", out)
        put(f"{pre}/h_n/{tag}", hn)
        if is_lstm:
            put(f"{pre}/c_n/{tag}", cn)
        put(f"{pre}/dx/{tag}", xl.grad)
        put(f"{pre}/dw_ih/{tag}", mod.weight_ih_l0.grad)
        put(f"{pre}/dw_hh/{tag}", mod.weight_hh_l0.grad)
        if bias:
            put(f"{pre}/db_ih/{tag}", mod.bias_ih_l0.grad)
            put(f"{pre}/db_hh/{tag}", mod.bias_hh_l0.grad)
        if init:
            put(f"{pre}/dh0/{tag}", h0l.grad)
            if is_lstm:
                put(f"{pre}/dc0/{tag}", c0l.grad)

    # Independent numpy check of the float64 (and float32) results.
    npin = {k: v.numpy() for k, v in inp.items()}
    ref = np_rnn(kind, npin["x"], npin.get("h0"), npin.get("c0"), npin["w_ih"], npin["w_hh"], npin.get("b_ih"),
                 npin.get("b_hh"), npin["dout"], npin["dh_n"], npin.get("dc_n"))
    if kind == "rnn_relu":
        assert ref["min_pre"] > 1e-4, (case, ref["min_pre"])
    names = ["out", "h_n", "dx", "dw_ih", "dw_hh"]
    names += ["c_n"] if is_lstm else []
    names += ["db_ih", "db_hh"] if bias else []
    names += (["dh0"] + (["dc0"] if is_lstm else [])) if init else []
    for nm in names:
        close(OUT[f"{pre}/{nm}/f64"], ref[nm], 1e-10, f"{case} {nm} f64")
        close(OUT[f"{pre}/{nm}/f32"], ref[nm], 1e-5, f"{case} {nm} f32")
    # h_n is the last step of out.
    assert np.array_equal(OUT[f"{pre}/h_n/f64"], OUT[f"{pre}/out/f64"][:, -1])
    print(f"{case}: numpy cross-check passed ({len(names)} arrays)")

# ---------------------------------------------------------------- write
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "rnn.bin")
refvec.write(path, OUT, meta=f"tests/reference/gen_rnn.py; {refvec.versions()}")
print(f"wrote {path}: {len(OUT) + 1} entries, {os.path.getsize(path)} bytes")
