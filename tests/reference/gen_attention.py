"""Reference vectors for constml's attention family (tests/attention_reference.rs).

Run from the repository root:  python3 tests/reference/gen_attention.py

Inputs are drawn in float32 and stored as f32 (so they are exact in f32 and f64);
every reference output is computed twice, in float32 ("/f32") and in float64
("/f64"), from the same inputs. Entry names are "<case>/<name>".

Cases
  sdpa_plain    F.scaled_dot_product_attention, no mask
  sdpa_allow    boolean allow mask with a fully masked row
  sdpa_block    block mask (masked_fill polarity) with a fully masked row
  sdpa_bias     additive float mask
  sdpa_causal   causal, NQ < NK, explicit bottom-right mask, scale override
  sdpa_window   causal bottom-right + sliding window of 3, explicit mask
  gqa / mqa     scaled_dot_product_attention(..., enable_gqa=True), causal for mqa
  mha           the from-scratch MultiHeadAttention (independent widths), block mask
  nnmha         torch.nn.MultiheadAttention with key_padding_mask (+ a bool attn_mask)
  mpt           MPT-style multi-query layer: Wqkv, clip_qkv, qk LayerNorm,
                softmax_scale, causal, ALiBi attn_bias, allow-style key padding.
                mpt_reference below is our transcription of MPT's attention into
                plain PyTorch, not MosaicML llm-foundry's code (not imported or run)
  hook_bias     score hook f(head, qpos, kpos) given to SDPA as an explicit bias
  shaw          Shaw relative key/value terms, explicit einsum computation

Head dimension 64, 37-41 keys (the 16-lane vector paths; appended after the cases
above so that their random draws, and hence their entries, are unchanged)
  sdpa64_plain  as sdpa_plain: NQ 7, NK 40, DK = DV = 64, no mask
  sdpa64_causal as sdpa_causal: NQ 6 at the end of NK 41, explicit bottom-right
                allow mask (not stored), default scale 1/8
  sdpa64_decode one query row over NK 40, DK = DV = 64, no mask (a decode step:
                the last position sees every key, so causal gives the same)
  sdpa64_dv     as sdpa_bias: NQ 3, NK 37, DK 64, DV 48, additive float mask
  gqa64         as mqa: 8 query heads, 2 KV heads, head dim 64, causal with
                NQ 5 at the end of NK 40
  mha64         as mha (same entries): 2 heads x 64 (projected width 128),
                DQK_IN 24, DV_IN 20, DO 12, NQ = NK = 40, block mask
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

import refvec

torch.manual_seed(20240603)
OUT = {}


def put(name, t):
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    OUT[name] = np.ascontiguousarray(t)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def both(fn):
    """Runs fn(dtype) for float32 and float64; returns {"f32": ..., "f64": ...}."""
    return {"f32": fn(torch.float32), "f64": fn(torch.float64)}


def safe_weights(scores):
    """Softmax over the last dim; a fully -inf row gives zeros (SDPA >= 2.5)."""
    return torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)


def sdpa_case(case, nq, nk, dk, dv, allow=None, bias=None, scale=None):
    q, k, v = randn(nq, dk), randn(nk, dk), randn(nk, dv)
    put(f"{case}/q", q)
    put(f"{case}/k", k)
    put(f"{case}/v", v)
    if bias is not None:
        put(f"{case}/bias", bias)
    for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
        qq, kk, vv = q.to(dt), k.to(dt), v.to(dt)
        mask = None
        if allow is not None:
            mask = allow
        if bias is not None:
            mask = bias.to(dt)
        out = F.scaled_dot_product_attention(qq[None], kk[None], vv[None], attn_mask=mask, scale=scale)[0]
        s = (qq @ kk.T) * (scale if scale is not None else 1.0 / math.sqrt(dk))
        if allow is not None:
            s = s.masked_fill(~allow, float("-inf"))
        if bias is not None:
            s = s + bias.to(dt)
        put(f"{case}/out_{tag}", out)
        put(f"{case}/w_{tag}", safe_weights(s))


def bottom_right(nq, nk, window=None):
    i = torch.arange(nq)[:, None] + (nk - nq)
    j = torch.arange(nk)[None, :]
    m = j <= i
    if window is not None:
        m &= (i - j) < window
    return m


# ---------------------------------------------------------------- plain SDPA
sdpa_case("sdpa_plain", 3, 5, 8, 6)
allow = torch.rand(3, 5) > 0.4
allow[0, 0] = True
allow[1, :] = False
put("sdpa_allow/mask", allow)
sdpa_case("sdpa_allow", 3, 5, 8, 6, allow=allow)
block = torch.rand(4, 6) > 0.6
block[2, :] = True
block[0, 0] = False
put("sdpa_block/mask", block)
sdpa_case("sdpa_block", 4, 6, 5, 3, allow=~block)
sdpa_case("sdpa_bias", 3, 5, 8, 6, bias=randn(3, 5))
sdpa_case("sdpa_causal", 3, 7, 4, 5, allow=bottom_right(3, 7), scale=0.3)
sdpa_case("sdpa_window", 4, 9, 4, 5, allow=bottom_right(4, 9, window=3))

# ---------------------------------------------------------------- GQA / MQA
def gqa_case(case, nq, nk, h, kvh, dk, dv, causal):
    q, k, v = randn(h, nq, dk), randn(kvh, nk, dk), randn(kvh, nk, dv)
    # Stored as (N, heads, D), constml's packed layout.
    put(f"{case}/q", q.transpose(0, 1))
    put(f"{case}/k", k.transpose(0, 1))
    put(f"{case}/v", v.transpose(0, 1))
    for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
        mask = bottom_right(nq, nk) if causal else None
        o = F.scaled_dot_product_attention(
            q.to(dt)[None], k.to(dt)[None], v.to(dt)[None], attn_mask=mask, enable_gqa=True
        )[0]
        put(f"{case}/out_{tag}", o.transpose(0, 1))


gqa_case("gqa", 3, 5, 6, 2, 4, 3, causal=False)
gqa_case("mqa", 4, 6, 4, 1, 4, 4, causal=True)

# ---------------------------------------------------------------- general MHA
# `mha` here (2 heads, widths 5/4 -> 3 and 2, output 3, a fixed block mask);
# `mha64` (head width 64, a random block mask) at the end of the file.
def mha_case(case, h, dqk_in, dv_in, dk, dv, do, nq, nk, block_mask):
    """The from-scratch MultiHeadAttention: fc_q, fc_k (dqk_in -> h heads x dk),
    fc_v (dv_in -> h heads x dv), fc_o (h*dv -> do); block_mask(nq, nk) gives the
    masked_fill (block) mask, drawn after the inputs."""
    fc_q, fc_k = torch.nn.Linear(dqk_in, h * dk), torch.nn.Linear(dqk_in, h * dk)
    fc_v, fc_o = torch.nn.Linear(dv_in, h * dv), torch.nn.Linear(h * dv, do)
    xq, xk, xv = randn(nq, dqk_in), randn(nk, dqk_in), randn(nk, dv_in)
    mblock = block_mask(nq, nk)
    assert not mblock.all(dim=-1).any()
    for n, lin in (("fc_q", fc_q), ("fc_k", fc_k), ("fc_v", fc_v), ("fc_o", fc_o)):
        put(f"{case}/{n}_w", lin.weight)
        put(f"{case}/{n}_b", lin.bias)
    put(f"{case}/query", xq)
    put(f"{case}/key", xk)
    put(f"{case}/value", xv)
    put(f"{case}/mask", mblock)
    for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
        L = lambda lin, x: F.linear(x.to(dt), lin.weight.to(dt), lin.bias.to(dt))
        q = L(fc_q, xq).view(nq, h, dk).transpose(0, 1)
        k = L(fc_k, xk).view(nk, h, dk).transpose(0, 1)
        v = L(fc_v, xv).view(nk, h, dv).transpose(0, 1)
        s = (q @ k.transpose(1, 2)) / math.sqrt(dk)
        s = s.masked_fill(mblock, float("-inf"))
        w = torch.softmax(s, dim=-1)
        ctx = (w @ v).transpose(0, 1).reshape(nq, h * dv)
        put(f"{case}/out_{tag}", L(fc_o, ctx))
        put(f"{case}/w_{tag}", w)


def fixed_mask(nq, nk):
    m = torch.zeros(nq, nk, dtype=torch.bool)
    m[0, 3] = True
    m[1, 0] = True
    return m


def random_mask(p):
    """Blocked with probability p, the diagonal never blocked."""
    def make(nq, nk):
        m = torch.rand(nq, nk) < p
        m[torch.arange(min(nq, nk)), torch.arange(min(nq, nk))] = False
        return m
    return make


mha_case("mha", 2, 5, 4, 3, 2, 3, 2, 4, fixed_mask)

# ---------------------------------------------------------------- nn.MultiheadAttention
E, NH, LQ, S = 8, 2, 3, 5
mha = torch.nn.MultiheadAttention(E, NH, batch_first=True)
with torch.no_grad():
    mha.in_proj_bias.copy_(randn(3 * E) * 0.1)
    mha.out_proj.bias.copy_(randn(E) * 0.1)
query, key, value = randn(LQ, E), randn(S, E), randn(S, E)
kpm = torch.tensor([False, False, True, False, True])
am = torch.zeros(LQ, S, dtype=torch.bool)
am[0, 1] = True
am[2, 0] = True
put("nnmha/in_proj_weight", mha.in_proj_weight)
put("nnmha/in_proj_bias", mha.in_proj_bias)
put("nnmha/out_proj_weight", mha.out_proj.weight)
put("nnmha/out_proj_bias", mha.out_proj.bias)
put("nnmha/query", query)
put("nnmha/key", key)
put("nnmha/value", value)
put("nnmha/key_padding_mask", kpm)
put("nnmha/attn_mask", am)
for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
    m = mha.to(dt).eval()
    with torch.no_grad():
        args = (query.to(dt)[None], key.to(dt)[None], value.to(dt)[None])
        o, wa = m(*args, key_padding_mask=kpm[None], need_weights=True, average_attn_weights=True)
        _, wh = m(*args, key_padding_mask=kpm[None], need_weights=True, average_attn_weights=False)
        o2, _ = m(*args, key_padding_mask=kpm[None], attn_mask=am, need_weights=True)
    put(f"nnmha/out_{tag}", o[0])
    put(f"nnmha/wavg_{tag}", wa[0])
    put(f"nnmha/whead_{tag}", wh[0])
    put(f"nnmha/out_am_{tag}", o2[0])

# ---------------------------------------------------------------- MPT
DM, MH, HD, N = 8, 4, 2, 5
CLIP, SCALE = 0.8, 0.4
w_qkv, b_qkv = randn(DM + 2 * HD, DM) * 0.4, randn(DM + 2 * HD) * 0.1
w_out, b_out = randn(DM, DM) * 0.3, randn(DM) * 0.1
qln_w, qln_b = 1 + 0.2 * randn(DM), 0.1 * randn(DM)
kln_w, kln_b = 1 + 0.2 * randn(HD), 0.1 * randn(HD)
x = randn(N, DM)
slopes = torch.tensor([2.0 ** (-8 * (h + 1) / MH) for h in range(MH)])
mpt_pad = torch.tensor([True, True, False, True, True])  # allow: False = padding
for n, t in (("w_qkv", w_qkv), ("b_qkv", b_qkv), ("w_out", w_out), ("b_out", b_out),
             ("qln_w", qln_w), ("qln_b", qln_b), ("kln_w", kln_w), ("kln_b", kln_b),
             ("x", x), ("slopes", slopes), ("key_padding", mpt_pad)):
    put(f"mpt/{n}", t)


def mpt_reference(dt, x, key_padding):
    """MPT's MultiQueryAttention forward (torch attention path), float32/64,
    transcribed into plain PyTorch here; not llm-foundry's own code."""
    c = lambda t: t.to(dt)
    qkv = F.linear(c(x), c(w_qkv), c(b_qkv)).clamp(-CLIP, CLIP)
    q, k, v = qkv.split([DM, HD, HD], dim=-1)
    q = F.layer_norm(q, (DM,), c(qln_w), c(qln_b), eps=1e-5)
    k = F.layer_norm(k, (HD,), c(kln_w), c(kln_b), eps=1e-5)
    s_q, s_k = q.shape[0], k.shape[0]
    qh = q.view(s_q, MH, HD).transpose(0, 1)          # (H, s_q, HD)
    kt = k.view(s_k, 1, HD).permute(1, 2, 0)          # (1, HD, s_k)
    vh = v.view(s_k, 1, HD).transpose(0, 1)           # (1, s_k, HD)
    aw = qh.matmul(kt) * SCALE                        # (H, s_q, s_k)
    # ALiBi as MPT builds it: slope_h * (j - (s_k - 1)), broadcast over queries.
    alibi = c(slopes)[:, None, None] * (torch.arange(s_k, dtype=dt) - (s_k - 1))[None, None, :]
    aw = aw + alibi
    fill = torch.finfo(dt).min
    if key_padding is not None:
        aw = aw.masked_fill(~key_padding.view(1, 1, s_k), fill)
    s = max(s_q, s_k)
    causal = ~torch.ones(s, s, dtype=torch.bool).tril()[-s_q:, -s_k:]
    aw = aw.masked_fill(causal.view(1, s_q, s_k), fill)
    aw = torch.softmax(aw, dim=-1)
    ctx = aw.matmul(vh).transpose(0, 1).reshape(s_q, DM)
    return F.linear(ctx, c(w_out), c(b_out))


for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
    put(f"mpt/out_{tag}", mpt_reference(dt, x, mpt_pad))
    put(f"mpt/out_nopad_{tag}", mpt_reference(dt, x, None))

# ---------------------------------------------------------------- score hooks
HB, NQB, NKB, DB, QSTART = 2, 3, 5, 4, 2


def hook_fn(h, i, j):
    return math.sin(0.3 * h + 0.7 * i - 0.2 * j)


q, k, v = randn(HB, NQB, DB), randn(HB, NKB, DB), randn(HB, NKB, DB)
put("hook_bias/q", q.transpose(0, 1))
put("hook_bias/k", k.transpose(0, 1))
put("hook_bias/v", v.transpose(0, 1))
for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
    bias = torch.tensor(
        [[[hook_fn(h, QSTART + i, j) for j in range(NKB)] for i in range(NQB)] for h in range(HB)], dtype=dt
    )
    o = F.scaled_dot_product_attention(q.to(dt)[None], k.to(dt)[None], v.to(dt)[None], attn_mask=bias[None])[0]
    put(f"hook_bias/out_{tag}", o.transpose(0, 1))

KS, NQS, NKS, DKS, DVS = 2, 3, 6, 4, 3
q, k, v = randn(NQS, DKS), randn(NKS, DKS), randn(NKS, DVS)
ak, av = randn(2 * KS + 1, DKS), randn(2 * KS + 1, DVS)
for n, t in (("q", q), ("k", k), ("v", v), ("ak", ak), ("av", av)):
    put(f"shaw/{n}", t)
qpos = torch.arange(NQS) + (NKS - NQS)
kpos = torch.arange(NKS)
idx = (kpos[None, :] - qpos[:, None]).clamp(-KS, KS) + KS  # (NQS, NKS)
for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
    qq, kk, vv, aK, aV = (t.to(dt) for t in (q, k, v, ak, av))
    s = (qq @ kk.T + torch.einsum("id,ijd->ij", qq, aK[idx])) / math.sqrt(DKS)
    s = s.masked_fill(~bottom_right(NQS, NKS), float("-inf"))
    w = torch.softmax(s, dim=-1)
    put(f"shaw/out_{tag}", w @ vv + torch.einsum("ij,ijd->id", w, aV[idx]))
    put(f"shaw/w_{tag}", w)

# ---------------------------------------------------------------- head dim 64
# Appended after every case above: they keep their random draws, so their entries
# stay byte-identical. Sizes: DK = 64 and 37-41 keys reach the 16-lane vector paths
# (with tails), while keeping the file small.
sdpa_case("sdpa64_plain", 7, 40, 64, 64)
sdpa_case("sdpa64_causal", 6, 41, 64, 64, allow=bottom_right(6, 41))
sdpa_case("sdpa64_decode", 1, 40, 64, 64)
sdpa_case("sdpa64_dv", 3, 37, 64, 48, bias=randn(3, 37))
gqa_case("gqa64", 5, 40, 8, 2, 64, 64, causal=True)


mha_case("mha64", 2, 24, 20, 64, 64, 12, 40, 40, random_mask(0.2))

here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "attention.bin")
refvec.write(path, OUT, meta="tests/reference/gen_attention.py; " + refvec.versions())
print(f"wrote {path}: {len(OUT)} entries, {os.path.getsize(path)} bytes")
