"""Reference vectors for constml's positional-encoding family.

Run from the repository root:  python3 tests/reference/gen_position.py
Writes tests/reference/position.bin (CMLREF01, see refvec.py).

Storage conventions: inputs are drawn in float32 and stored as f32 (exact in both
f32 and f64); "exact" references are evaluated with mpmath at 60 significant
decimal digits from the formula given below and rounded once to float64;
references produced by PyTorch / Hugging Face code are stored in the dtype that
code returns. Integer data is i64, booleans are u8, name lists are u8 UTF-8 text
joined by ",". Every section reseeds torch from its own fixed seed, so adding a
section later does not change the random draws of the others.

Cases
  sin/positions        P = [0, 1, 2, 3, 10, 100, 1000, 1024, 4095, 10000, 65535, 100000]
  sin/inter/d{d}       d = 1, 2, 3, 7, 8, 64, 65; exact, (len(P), d). Column 2i holds
                       sin(p / 10000^(2i/d)), column 2i+1 holds cos of the same angle
                       (odd d: the last column is a sine column).
  sin/halves/d{d}      d = 4, 5, 8, 9, 64, 65; exact, (len(P), d). h = d // 2,
                       f_i = exp(-i ln(10000) / (h - 1)); row = [sin(p f_i) for i < h]
                       + [cos(p f_i) for i < h] + one zero column when d is odd.
  sin/m2m100/d{d}      d = 8, 64, 65; f32 (14, d), rows at sin/m2m100/positions, of
                       M2M100SinusoidalPositionalEmbedding.get_embedding(1025, d,
                       padding_idx=None). The installed version supports odd d (it
                       appends a zero column), so d = 65 is included.
  learned/*            a learned absolute table (6, 5) indexed by positions
                       [0, 1, 2, 2, 5, 1, 3] (repeats on purpose): y = x + table[pos],
                       loss = sum(y * dy), autograd gradient wrt the table and one
                       torch.optim.SGD(lr=0.1) step, in f32 and f64 from the same inputs.
  t5/<config>          T5Attention._relative_position_bucket over relative positions
                       (key - query) -1000..1000 (index r + 1000), stored as u8; ten configs listed in
                       T5_CONFIGS, plus t5/configs (10, 3) [bidirectional, num_buckets,
                       max_distance] and t5/names.
  t5_bias/*            T5Attention(T5Config(d_model 16, d_kv 4, 3 heads, 32 buckets,
                       max distance 128), has_relative_attention_bias=True) with a seeded
                       bias table (32, 3); compute_bias(12, 300) -> out (3, 12, 300).
  t5_bias_causal/*     the same for is_decoder=True (unidirectional buckets); and
                       out_step (3, 1, 300): compute_bias(1, 300, past_seen_tokens=299),
                       which is how the installed T5Attention.forward calls it during
                       cached decoding (one query at position 299, keys 0..299). The
                       installed compute_bias has no cache_position argument; it takes
                       the offset as past_seen_tokens.
  alibi/exact/{n}      n = 1..16, 24, 32; exact slopes (Press et al.): m = 2^floor(log2 n),
                       2^(-8k/m) for k = 1..m, then 2^(-4(2j-1)/m) for j = 1..n-m.
  alibi/mpt/{n}        f32, the negated bias at relative position -1 of
                       build_mpt_alibi_tensor(n, 2, alibi_bias_max=8); the installed
                       version returns shape (n, 1, 2), so slope h = -alibi[h, 0, 0].
  alibi/bloom/{n}      f32, bias at position 1 of bloom's build_alibi_tensor on a (1, 2)
                       all-ones mask: slope h = alibi[h, 0, 1].
  alibi_bloom_pad/*    bloom's build_alibi_tensor with left padding, batch 3, seq 7,
                       6 heads: mask u8 (3, 7), out f32 (3, 6, 7).
  rope/<case>          exact rotary embedding of seeded x (n, D) at positions
                       PR = [0, 1, 2, 100, 4095, 65536, 100000, 1000000]; see ROPE_CASES
                       for (layout, D, R, theta, scaling, s). params = [D, R, theta,
                       scaling (0 none, 1 linear, 2 ntk), s, layout (0 inter, 1 half)].
                       ntk base: theta * s^(R/(R-2)); linear: angle / s. rope/cases
                       lists the case names.
  rope_hf/<case>       Hugging Face's float32 recipe at PH = [0, 1, 2, 100, 1000, 4095,
                       100000]: LlamaRotaryEmbedding + llama apply_rotary_pos_emb
                       (llama_d64: head dim 64, theta 1e4; llama_linear: head dim 32,
                       theta 5e5, linear factor 4), GPTNeoXRotaryEmbedding + GPT-NeoX
                       apply_rotary_pos_emb (neox_partial: head dim 64, rotary_pct 0.25,
                       i.e. R = 16; the installed GPT-NeoX apply function splits off and
                       re-appends the pass-through columns itself). Stores x, pos, the
                       returned cos / sin (n, R), out (n, D), params [D, R, theta,
                       scaling (0 none, 1 linear), s], and `exact`, the mpmath rotation
                       of the same x (half layout), and inv_freq (R/2), the module's f32
                       frequencies (PyTorch's vectorised f32 pow is not always correctly
                       rounded, so a few of them can be one ulp off the exact f32 power).
  shaw_layer/*         a full Shaw et al. (2018) relative-attention layer (our own
                       explicit transcription): N 6, model width 8, 2 heads of width 4,
                       clip distance K = 2, tables ak / av (2K+1, 4) shared by the heads,
                       index clip(j - i, -K, K) + K; out (non-causal) and out_causal
                       (key j > query i masked), each in f32 and f64.
"""
import os
import sys

import mpmath
import numpy as np
import torch
from mpmath import mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

from transformers import GPTNeoXConfig, LlamaConfig, T5Config  # noqa: E402
from transformers.models.bloom.modeling_bloom import build_alibi_tensor  # noqa: E402
from transformers.models.gpt_neox import modeling_gpt_neox as neox  # noqa: E402
from transformers.models.llama import modeling_llama as llama  # noqa: E402
from transformers.models.m2m_100.modeling_m2m_100 import M2M100SinusoidalPositionalEmbedding  # noqa: E402
from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor  # noqa: E402
from transformers.models.t5.modeling_t5 import T5Attention  # noqa: E402

mp.dps = 60
OUT = {}


def put(name, a):
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    assert name not in OUT, name
    OUT[name] = np.ascontiguousarray(a)


def ints(values):
    return np.asarray(values, dtype=np.int64)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def to_f64(grid):
    """Nested lists of mpf -> float64 array (round to nearest)."""
    return np.array([[float(v) for v in row] for row in grid], dtype=np.float64)


# ---------------------------------------------------------------- sinusoidal
P = [0, 1, 2, 3, 10, 100, 1000, 1024, 4095, 10000, 65535, 100000]
put("sin/positions", ints(P))


def sin_interleaved(p, d):
    row = []
    for c in range(d):
        i = c // 2
        angle = mp.mpf(p) / mp.power(10000, mp.mpf(2 * i) / d)
        row.append(mp.sin(angle) if c % 2 == 0 else mp.cos(angle))
    return row


def sin_halves(p, d):
    h = d // 2
    freqs = [mp.exp(-i * mp.log(10000) / (h - 1)) for i in range(h)]
    row = [mp.sin(p * f) for f in freqs] + [mp.cos(p * f) for f in freqs]
    if d % 2 == 1:
        row.append(mp.mpf(0))
    return row


for d in (1, 2, 3, 7, 8, 64, 65):
    put(f"sin/inter/d{d}", to_f64([sin_interleaved(p, d) for p in P]))
for d in (4, 5, 8, 9, 64, 65):
    put(f"sin/halves/d{d}", to_f64([sin_halves(p, d) for p in P]))
M2M_P = [0, 1, 2, 3, 10, 100, 255, 256, 511, 512, 777, 1000, 1023, 1024]
for d in (8, 64, 65):
    emb = M2M100SinusoidalPositionalEmbedding.get_embedding(1025, d, padding_idx=None)
    assert emb.dtype == torch.float32 and tuple(emb.shape) == (1025, d)
    put(f"sin/m2m100/d{d}", emb[M2M_P])
put("sin/m2m100/positions", ints(M2M_P))

# ---------------------------------------------------------------- learned table
torch.manual_seed(7101)
MAX_POS, DL = 6, 5
table = randn(MAX_POS, DL)
lpos = torch.tensor([0, 1, 2, 2, 5, 1, 3], dtype=torch.int64)
lx, ldy = randn(7, DL), randn(7, DL)
put("learned/table", table)
put("learned/positions", lpos)
put("learned/x", lx)
put("learned/dy", ldy)
for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
    t = table.to(dt).clone().requires_grad_(True)
    y = lx.to(dt) + t[lpos]
    (y * ldy.to(dt)).sum().backward()
    grad = t.grad.detach().clone()
    opt = torch.optim.SGD([t], lr=0.1)
    opt.step()
    put(f"learned/y/{tag}", y)
    put(f"learned/grad/{tag}", grad)
    put(f"learned/updated/{tag}", t)

# ---------------------------------------------------------------- T5 buckets
T5_CONFIGS = [
    ("bi_32_128", True, 32, 128),
    ("causal_32_128", False, 32, 128),
    ("bi_8_20", True, 8, 20),
    ("causal_8_20", False, 8, 20),
    ("bi_4_5", True, 4, 5),
    ("causal_2_3", False, 2, 3),
    ("bi_64_256", True, 64, 256),
    ("causal_16_1000", False, 16, 1000),
    ("bi_10_37", True, 10, 37),
    ("causal_7_50", False, 7, 50),
]
rel = torch.arange(-1000, 1001)
for name, bi, nb, md in T5_CONFIGS:
    b = T5Attention._relative_position_bucket(rel, bidirectional=bi, num_buckets=nb, max_distance=md)
    assert int(b.max()) < 256
    put(f"t5/{name}", b.to(torch.uint8))
put("t5/configs", ints([[int(bi), nb, md] for _, bi, nb, md in T5_CONFIGS]))
put("t5/names", refvec.text(",".join(n for n, *_ in T5_CONFIGS)))


def t5_bias(prefix, is_decoder, seed):
    cfg = T5Config(d_model=16, d_kv=4, num_heads=3, relative_attention_num_buckets=32,
                   relative_attention_max_distance=128, is_decoder=is_decoder)
    att = T5Attention(cfg, has_relative_attention_bias=True, layer_idx=0).eval()
    torch.manual_seed(seed)
    w = randn(32, 3)
    with torch.no_grad():
        att.relative_attention_bias.weight.copy_(w)
        out = att.compute_bias(12, 300)
        full = att.compute_bias(300, 300)
    assert tuple(out.shape) == (1, 3, 12, 300)
    assert torch.equal(out, full[:, :, :12, :])
    put(f"{prefix}/weight", w)
    put(f"{prefix}/out", out[0])
    return att, full


t5_bias("t5_bias", False, 7201)
dec, dec_full = t5_bias("t5_bias_causal", True, 7202)
with torch.no_grad():
    step = dec.compute_bias(1, 300, past_seen_tokens=299)
assert tuple(step.shape) == (1, 3, 1, 300)
assert torch.equal(step[0, :, 0, :], dec_full[0, :, 299, :])
put("t5_bias_causal/out_step", step[0])

# ---------------------------------------------------------------- ALiBi
ALIBI_N = list(range(1, 17)) + [24, 32]


def alibi_exact(n):
    m = 2 ** (n.bit_length() - 1)
    s = [mp.power(2, mp.mpf(-8 * k) / m) for k in range(1, m + 1)]
    s += [mp.power(2, mp.mpf(-4 * (2 * j - 1)) / m) for j in range(1, n - m + 1)]
    return np.array([float(v) for v in s], dtype=np.float64)


for n in ALIBI_N:
    put(f"alibi/exact/{n}", alibi_exact(n))
for n in ALIBI_N:
    a = build_mpt_alibi_tensor(n, 2, alibi_bias_max=8)
    assert tuple(a.shape) == (n, 1, 2) and a.dtype == torch.float32, a.shape
    slopes = -a[:, 0, 0]
    assert torch.equal(a[:, 0, 0], slopes * -1) and torch.all(a[:, 0, 1] == 0)
    put(f"alibi/mpt/{n}", slopes)
for n in ALIBI_N:
    a = build_alibi_tensor(torch.ones(1, 2, dtype=torch.long), num_heads=n, dtype=torch.float32)
    assert tuple(a.shape) == (n, 1, 2) and torch.all(a[:, 0, 0] == 0)
    put(f"alibi/bloom/{n}", a[:, 0, 1])
pad_mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1]])
bpad = build_alibi_tensor(pad_mask, num_heads=6, dtype=torch.float32)
assert tuple(bpad.shape) == (18, 1, 7)
put("alibi_bloom_pad/mask", pad_mask.to(torch.uint8))
put("alibi_bloom_pad/out", bpad.reshape(3, 6, 7))

# ---------------------------------------------------------------- RoPE, exact
SCALING = {"none": 0, "linear": 1, "ntk": 2}
LAYOUT = {"inter": 0, "half": 1}
PR = [0, 1, 2, 100, 4095, 65536, 100000, 1000000]
ROPE_CASES = [
    ("inter_d64", "inter", 64, 64, 1e4, "none", 1),
    ("half_d64", "half", 64, 64, 1e4, "none", 1),
    ("half_partial", "half", 64, 32, 1e4, "none", 1),
    ("inter_partial", "inter", 48, 16, 1e4, "none", 1),
    ("half_linear", "half", 32, 32, 5e5, "linear", 4),
    ("inter_ntk", "inter", 32, 32, 1e4, "ntk", 8),
    ("half_theta", "half", 128, 128, 1e6, "none", 1),
    ("inter_d2", "inter", 2, 2, 1e4, "none", 1),
]


def rope_exact(x, positions, layout, rdim, theta, scaling, s):
    """x: f32 (n, D) tensor; returns the exact rotation as float64 (n, D)."""
    theta = mp.mpf(theta)
    s = mp.mpf(s)
    if scaling == "ntk":
        theta = theta * mp.power(s, mp.mpf(rdim) / (rdim - 2))
    half = rdim // 2
    freqs = [mp.power(theta, -mp.mpf(2 * i) / rdim) for i in range(half)]
    rows = []
    for row, p in zip(x.tolist(), positions):
        xr = [mp.mpf(v) for v in row]
        out = list(xr)
        for i, f in enumerate(freqs):
            angle = p * f
            if scaling == "linear":
                angle = angle / s
            c, sn = mp.cos(angle), mp.sin(angle)
            a, b = (2 * i, 2 * i + 1) if layout == "inter" else (i, i + half)
            out[a] = xr[a] * c - xr[b] * sn
            out[b] = xr[b] * c + xr[a] * sn
        rows.append(out)
    return to_f64(rows)


torch.manual_seed(7301)
for case, layout, D, R, theta, scaling, s in ROPE_CASES:
    x = randn(len(PR), D)
    put(f"rope/{case}/x", x)
    put(f"rope/{case}/pos", ints(PR))
    put(f"rope/{case}/out", rope_exact(x, PR, layout, R, theta, scaling, s))
    put(f"rope/{case}/params", np.array([D, R, theta, SCALING[scaling], s, LAYOUT[layout]], dtype=np.float64))
put("rope/cases", refvec.text(",".join(c[0] for c in ROPE_CASES)))

# ---------------------------------------------------------------- RoPE, HF float32 recipe
PH = [0, 1, 2, 100, 1000, 4095, 100000]
HF_CASES = [
    # name, module, config, D, R, theta, scaling, s
    ("llama_d64", "llama",
     LlamaConfig(hidden_size=128, num_attention_heads=2, head_dim=64,
                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
     64, 64, 1e4, "none", 1),
    ("llama_linear", "llama",
     LlamaConfig(hidden_size=64, num_attention_heads=2, head_dim=32,
                 rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0}),
     32, 32, 5e5, "linear", 4),
    ("neox_partial", "neox",
     GPTNeoXConfig(hidden_size=128, num_attention_heads=2, rotary_pct=0.25, rotary_emb_base=10000),
     64, 16, 1e4, "none", 1),
]
HF_REPORT = []
torch.manual_seed(7401)
pos_ids = torch.tensor([PH], dtype=torch.int64)
for case, kind, cfg, D, R, theta, scaling, s in HF_CASES:
    x = randn(len(PH), D)
    q = x[None, None]  # (1, 1, n, D)
    with torch.no_grad():
        if kind == "llama":
            rot = llama.LlamaRotaryEmbedding(cfg)
            cos, sin = rot(q, pos_ids)
            out = llama.apply_rotary_pos_emb(q, q, cos, sin)[0]
        else:
            rot = neox.GPTNeoXRotaryEmbedding(cfg)
            cos, sin = rot(q, pos_ids)
            out = neox.apply_rotary_pos_emb(q, q, cos, sin)[0]
            # The same thing spelled out: rotate the first R columns, append the rest.
            c4, s4 = cos[:, None], sin[:, None]
            qr = q[..., :R]
            manual = torch.cat([qr * c4 + neox.rotate_half(qr) * s4, q[..., R:]], dim=-1)
            assert torch.equal(out, manual)
    assert tuple(cos.shape) == (1, len(PH), R) and cos.dtype == torch.float32
    assert tuple(out.shape) == (1, 1, len(PH), D) and out.dtype == torch.float32
    exact = rope_exact(x, PH, "half", R, theta, scaling, s)
    put(f"rope_hf/{case}/x", x)
    put(f"rope_hf/{case}/pos", ints(PH))
    put(f"rope_hf/{case}/cos", cos[0])
    put(f"rope_hf/{case}/sin", sin[0])
    put(f"rope_hf/{case}/out", out[0, 0])
    put(f"rope_hf/{case}/params", np.array([D, R, theta, SCALING[scaling], s], dtype=np.float64))
    put(f"rope_hf/{case}/exact", exact)
    put(f"rope_hf/{case}/inv_freq", rot.inv_freq.float())
    err = np.abs(out[0, 0].numpy().astype(np.float64) - exact).max(axis=1)
    HF_REPORT.append((case, err))

# ---------------------------------------------------------------- Shaw layer
torch.manual_seed(7501)
SN, SDM, SH, SD, SK = 6, 8, 2, 4, 2
shaw = {
    "x": randn(SN, SDM),
    "wq": randn(SH * SD, SDM) * 0.4, "bq": randn(SH * SD) * 0.1,
    "wk": randn(SH * SD, SDM) * 0.4, "bk": randn(SH * SD) * 0.1,
    "wv": randn(SH * SD, SDM) * 0.4, "bv": randn(SH * SD) * 0.1,
    "wo": randn(SDM, SH * SD) * 0.4, "bo": randn(SDM) * 0.1,
    "ak": randn(2 * SK + 1, SD), "av": randn(2 * SK + 1, SD),
}
for n, t in shaw.items():
    put(f"shaw_layer/{n}", t)


def shaw_layer(dt, causal):
    """Shaw relative attention, multi-head, written out with einsum."""
    w = {n: t.to(dt) for n, t in shaw.items()}
    x = w["x"]
    i = torch.arange(SN)[:, None]
    j = torch.arange(SN)[None, :]
    idx = (j - i).clamp(-SK, SK) + SK               # (N, N): query i, key j
    rk, rv = w["ak"][idx], w["av"][idx]              # (N, N, D)
    heads = []
    for h in range(SH):
        cols = slice(h * SD, (h + 1) * SD)
        q = x @ w["wq"][cols].T + w["bq"][cols]      # (N, D)
        k = x @ w["wk"][cols].T + w["bk"][cols]
        v = x @ w["wv"][cols].T + w["bv"][cols]
        score = torch.einsum("id,ijd->ij", q, k[None, :, :] + rk) / torch.tensor(SD, dtype=dt).sqrt()
        if causal:
            score = score.masked_fill(j > i, float("-inf"))
        alpha = torch.softmax(score, dim=-1)
        heads.append(torch.einsum("ij,ijd->id", alpha, v[None, :, :] + rv))
    cat = torch.cat(heads, dim=-1)                   # (N, H*D), head h in columns h*D..
    return cat @ w["wo"].T + w["bo"]


for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
    put(f"shaw_layer/out/{tag}", shaw_layer(dt, causal=False))
    put(f"shaw_layer/out_causal/{tag}", shaw_layer(dt, causal=True))

# ---------------------------------------------------------------- write
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "position.bin")
refvec.write(path, OUT, meta=f"tests/reference/gen_position.py; {refvec.versions()}, mpmath {mpmath.__version__}")
print(f"wrote {path}: {len(OUT) + 1} entries, {os.path.getsize(path)} bytes")
for case, err in HF_REPORT:
    print(f"rope_hf/{case}: max |HF - exact| per position " + ", ".join(
        f"{p}: {e:.3g}" for p, e in zip(PH, err)))
