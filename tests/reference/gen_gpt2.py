"""Reference vectors for constml's GPT-2 port: a tiny randomly initialised
Hugging Face GPT2LMHeadModel, its weights exactly as Hugging Face stores them,
its logits (full forward in float32 and float64, and token by token through
the key/value cache), and the output of `generate` for beam search (two
settings) and greedy decoding.

Run from the repository root:  python3 tests/reference/gen_gpt2.py
Writes tests/reference/gpt2.bin (CMLREF01, see refvec.py). CPU only, one
thread (torch.set_num_threads(1)), autograd off.

==========================================================================
Model: transformers.GPT2Config(vocab_size=64, n_positions=40, n_embd=32,
n_layer=2, n_head=4, activation_function="gelu_new", layer_norm_epsilon=1e-5,
resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, bos_token_id=0, eos_token_id=1,
tie_word_embeddings=True), every other field at its default (in particular
scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False,
reorder_and_upcast_attn=False), eager attention, GPT2LMHeadModel in eval mode.
E = n_embd = 32, H = n_head = 4, D = E / H = 8 (head size), V = 64, F = 4E =
128 (MLP width), L = 2 layers.

Forward pass over token ids t_0..t_{T-1} (positions 0..T-1), row vectors:
    x_i = wte[t_i] + wpe[i]
    per layer l (prefix transformer.h.{l}.):
        a = LN(x; ln_1)
        qkv = a @ attn.c_attn.weight + attn.c_attn.bias          (3E wide)
        q = qkv[:, 0:E], k = qkv[:, E:2E], v = qkv[:, 2E:3E]
        head h uses columns [h*D, (h+1)*D) of q, k and v;
        s_ij = q_i . k_j / sqrt(D) for j <= i (causal), softmax over j,
        o_i = sum_j softmax_ij v_j; heads concatenated in order h = 0..H-1
        x = x + o @ attn.c_proj.weight + attn.c_proj.bias
        m = LN(x; ln_2)
        x = x + gelu_new(m @ mlp.c_fc.weight + mlp.c_fc.bias)
                  @ mlp.c_proj.weight + mlp.c_proj.bias
    logits = LN(x; ln_f) @ wte^T        (the head is tied to wte)
with LN(x; w, b) = (x - mean(x)) / sqrt(var(x) + 1e-5) * w + b (mean and
biased variance over the E features of each row) and
gelu_new(u) = 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
This is checked against an independent numpy float64 implementation of these
equations (see "Checks" below).

State-dict layout: Hugging Face's GPT-2 uses Conv1D layers, whose weight is
stored (in_features, out_features) and applied as y = x @ W + b; this is the
transpose of torch.nn.Linear's (out, in). The entries keep Hugging Face's
layout unchanged:
    transformer.wte.weight             (V, E)      token embedding (also the head)
    transformer.wpe.weight             (40, E)     position embedding
    transformer.h.{l}.ln_1.weight/bias (E)
    transformer.h.{l}.attn.c_attn.weight (E, 3E)   columns: q | k | v blocks
    transformer.h.{l}.attn.c_attn.bias   (3E)      same q | k | v order
    transformer.h.{l}.attn.c_proj.weight (E, E)
    transformer.h.{l}.attn.c_proj.bias   (E)
    transformer.h.{l}.ln_2.weight/bias (E)
    transformer.h.{l}.mlp.c_fc.weight    (E, F)
    transformer.h.{l}.mlp.c_fc.bias      (F)
    transformer.h.{l}.mlp.c_proj.weight  (F, E)
    transformer.h.{l}.mlp.c_proj.bias    (E)
    transformer.ln_f.weight/bias       (E)
lm_head.weight is the same tensor as transformer.wte.weight and is not
stored; this transformers version registers no attention buffers
(attn.bias / attn.masked_bias), and none would be stored if it did.

Weights: torch.manual_seed(20250303), then one torch.randn draw in float32 per
parameter, in model.named_parameters() order (= the order of gpt2/names),
with the full shape of the parameter, scaled as follows (N = the draw):
    wte 0.5 N;  wpe 0.3 N;
    Conv1D weights (c_attn, c_proj, c_fc, mlp.c_proj) N * 1.2 / sqrt(fan_in),
        fan_in = the weight's first dimension (in_features);
    Conv1D biases 0.1 N;
    LayerNorm weights 1 + 0.1 N;  LayerNorm biases 0.1 N.
(Hugging Face's own initialisation, std 0.02, makes the next-token
distribution almost flat; these scales make it peaked and free of near-ties.)

==========================================================================
Entries (i64 integers, f32 / f64 floats, u8 text):

gpt2/config          i64 [vocab 64, n_positions 40, n_embd 32, n_layer 2,
                     n_head 4, bos 0, eos 1].
gpt2/names           u8: the Hugging Face names of the stored parameters,
                     comma-separated, in named_parameters() order (without
                     the gpt2/w/ prefix).
gpt2/w/{name}        f32: each parameter under its state-dict name, in the
                     layout above (e.g. gpt2/w/transformer.h.0.attn.c_attn.weight
                     is (32, 96)).
gpt2/prompt          i64 (32,): bos 0 followed by 31 ids drawn with
                     numpy.random.default_rng(2).integers(2, 64) (so no eos
                     and no second bos inside).
gpt2/logits          f32 (32, 64): one forward call of the float32 model over
                     the whole prompt (no cache); row t = next-token logits
                     after positions 0..t.
gpt2/logits_f64      f64 (32, 64): the same after converting the model (a
                     deep copy) to float64; the float32 weights are exact in
                     float64, so both rows come from the same parameters.
gpt2/cached_logits   f32 (32, 64): the float32 model fed the prompt one token
                     per call with use_cache=True, each call passing the
                     previous call's past_key_values (positions follow from
                     the cache length); row t = the logits of the call that
                     fed token t. Asserted equal to gpt2/logits to 1e-5.

Beam search, case 1, under gpt2/beam/:
  prompt             i64 (6,): gpt2/prompt[:6].
  sequences          i64 (4, Lmax): `sequences` returned by
                         model.generate(input_ids=prompt[None], attention_mask=ones,
                             num_beams=4, num_return_sequences=4, max_new_tokens=12,
                             do_sample=False, early_stopping=False, length_penalty=1.0,
                             eos_token_id=1, pad_token_id=1, min_length=0,
                             no_repeat_ngram_size=0, repetition_penalty=1.0,
                             temperature=1.0, use_cache=True, output_scores=True,
                             return_dict_in_generate=True)
                     Each row is the prompt followed by the generated tokens,
                     best hypothesis first; rows shorter than Lmax (= 6 + the
                     longest hypothesis' generated count) are padded with 1,
                     as Hugging Face pads them (pad = eos = 1 here, so a
                     padded row's padding cannot be told from its eos by
                     value).
  scores             f32 (4,): `sequences_scores`, i.e. for each hypothesis
                     sum of log_softmax(logits) of its generated tokens
                     (eos included) divided by n_gen ** length_penalty, with
                     n_gen = its number of generated tokens (eos included).
  lengths            i64 (4,): each row's length without padding = 6 +
                     n_gen, where n_gen is the number of non-negative
                     entries of the returned `beam_indices` row (not the
                     number of non-1 tokens). A hypothesis shorter than 6 + 12
                     ends with its eos (1), which is counted; a hypothesis of
                     length 18 stopped at max_new_tokens.
Beam search, case 2, under gpt2/beam2/: prompt, sequences, scores, lengths as
  above, from the same call with length_penalty=0.5 and early_stopping=True.
  (early_stopping=True ends the search as soon as 4 hypotheses have
  finished.)
No logits processor is active in either call (asserted: the processor list
generate builds is empty), so the scores are plain log-probabilities.

Greedy, gpt2/greedy/:
  sequence           i64 (n,): model.generate(input_ids=gpt2/beam/prompt[None],
                     attention_mask=ones, do_sample=False, num_beams=1,
                     max_new_tokens=12, eos_token_id=1, pad_token_id=1,
                     min_length=0, no_repeat_ngram_size=0,
                     repetition_penalty=1.0, temperature=1.0, use_cache=True)[0]:
                     the prompt followed by the greedy tokens; generation
                     stops after eos (kept) or after 12 new tokens. With this
                     model it stops early, so n < 18 and the last id is 1.

meta                 u8: generator and library versions (torch, transformers).

==========================================================================
Checks made before writing:
  * the float64 logits equal an independent numpy float64 forward (the
    equations above, on the stored weights) to 1e-10; the float32 ones to
    1e-4; the cached logits equal the full-forward ones to 1e-5;
  * tie-freeness: the smallest gap between the two largest logits over all
    32 rows of gpt2/logits, and over every decoding step of the greedy run
    (logits of a full float32 forward over the greedy sequence, rows 5 ..
    n-2), is > 1e-3; each greedy token is the argmax of its row (in float32
    and in the numpy float64 forward);
  * beam search: every returned sequence is the prompt, then generated
    tokens with no eos before the last one, which is eos iff the hypothesis
    is shorter than 18; each score is recomputed from a fresh forward over
    the unpadded sequence (to 1e-5); case 1 has at least one hypothesis that
    ends with eos before max_new_tokens, and the 4 scores of each case are
    distinct (by > 1e-4);
  * beam search is repeated by an independent numpy float64 implementation
    of Hugging Face's algorithm (written out in np_beam below) on the numpy
    forward; it returns the same sequences and lengths, scores to 1e-5, and
    at every cut that shapes the result (the top-2*num_beams cut, the cut
    after num_beams that decides which finished candidates may enter the
    pool, the cut that picks the running beams, the pool's own cut and the
    stop test) the two scores on either side differ by > 1e-3 (the smallest
    such gap is printed), so the outcome does not hinge on rounding; generate
    on the float64 copy of the model returns the same sequences as well.
"""
import copy
import math
import os
import sys

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

torch.set_num_threads(1)
torch.set_grad_enabled(False)

WEIGHT_SEED = 20250303
PROMPT_SEED = 2
V, NPOS, E, NL, NH, BOS, EOS = 64, 40, 32, 2, 4, 0, 1
D = E // NH
LN_EPS = 1e-5
T_PROMPT, BEAM_PROMPT, MAX_NEW, NUM_BEAMS = 32, 6, 12, 4

OUT = {}


def put(name, a):
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    assert name not in OUT, name
    OUT[name] = np.array(a, copy=True, order="C")


def close(a, b, tol, what=""):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    assert err <= tol, (what, err)
    return err


def top2_gap(rows):
    s = np.sort(np.asarray(rows, dtype=np.float64), axis=-1)
    return float(np.min(s[..., -1] - s[..., -2]))


# ---------------------------------------------------------------- model
def make_model():
    cfg = GPT2Config(vocab_size=V, n_positions=NPOS, n_embd=E, n_layer=NL, n_head=NH,
                     activation_function="gelu_new", layer_norm_epsilon=LN_EPS, resid_pdrop=0, embd_pdrop=0,
                     attn_pdrop=0, bos_token_id=BOS, eos_token_id=EOS, tie_word_embeddings=True)
    cfg._attn_implementation = "eager"
    model = GPT2LMHeadModel(cfg).to(torch.float32).eval()
    assert model.config._attn_implementation == "eager"
    assert cfg.scale_attn_weights and not cfg.scale_attn_by_inverse_layer_idx and not cfg.reorder_and_upcast_attn
    assert model.lm_head.weight is model.transformer.wte.weight

    torch.manual_seed(WEIGHT_SEED)
    for name, p in model.named_parameters():
        shape = tuple(p.shape)
        n = torch.randn(*shape, dtype=torch.float32)
        if name == "transformer.wte.weight":
            t = 0.5 * n
        elif name == "transformer.wpe.weight":
            t = 0.3 * n
        elif ".ln_" in name:
            t = 1.0 + 0.1 * n if name.endswith(".weight") else 0.1 * n
        elif name.endswith(".weight"):  # Conv1D, (in, out)
            assert len(shape) == 2, name
            t = n * (1.2 / math.sqrt(shape[0]))
        else:  # Conv1D bias
            assert name.endswith(".bias") and len(shape) == 1, name
            t = 0.1 * n
        p.copy_(t)
    return model


# ---------------------------------------------------------------- numpy float64 reference
def np_layernorm(x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


def np_gelu_new(u):
    return 0.5 * u * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (u + 0.044715 * u ** 3)))


def np_forward(w, ids):
    """Logits (T, V) for token ids, float64, from the equations in the docstring."""
    ids = np.asarray(ids)
    t_ = len(ids)
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:t_]
    causal = np.tril(np.ones((t_, t_), dtype=bool))
    for layer in range(NL):
        p = f"transformer.h.{layer}."
        a = np_layernorm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = qkv[:, :E], qkv[:, E:2 * E], qkv[:, 2 * E:]
        heads = []
        for h in range(NH):
            sl = slice(h * D, (h + 1) * D)
            s = q[:, sl] @ k[:, sl].T / math.sqrt(D)
            s = np.where(causal, s, -np.inf)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            heads.append(s @ v[:, sl])
        o = np.concatenate(heads, axis=1)
        x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = np_layernorm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        f = np_gelu_new(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + f @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    return np_layernorm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"]) @ w["transformer.wte.weight"].T


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_beam(w, prompt, num_beams, max_new, length_penalty, early_stopping, eos=EOS):
    """Hugging Face's beam search (generation/utils.py `_beam_search`, batch 1,
    one eos id, no processors), restated in float64 on np_forward. Returns
    (hypotheses best first as (token list, score), smallest decision gap).

    Each step takes the top 2*num_beams continuations of the running beams by
    accumulated log-probability. Of these, the first num_beams that end in eos
    (or reach the length limit) are offered to the finished pool with score
    acc / n_gen**length_penalty; the pool keeps its best num_beams. The best
    num_beams continuations that did not finish become the running beams.
    The search stops when every continuation hit the length limit, when
    early_stopping is True and the pool is full, or when (pool full and) the
    best running beam's acc / n_gen_so_far**length_penalty no longer beats
    the pool's worst score (this last test sticks once it fails, and also
    blocks later additions to the pool)."""
    p_len = len(prompt)
    max_len = p_len + max_new
    k_keep = 2 * num_beams
    running = [(list(prompt), 0.0)]  # HF's other initial beams start at -1e9 and never get picked
    pool = []  # finished (tokens, score)
    improvable = True
    gaps = []
    cur_len = p_len
    while True:
        cands = []
        for seq, acc in running:
            lp = np_log_softmax(np_forward(w, seq)[-1])
            cands += [(acc + lp[tok], seq + [tok]) for tok in range(V)]
        cands.sort(key=lambda c: -c[0])
        top = cands[:k_keep]
        # Rank boundaries that decide the outcome: the top-k_keep cut and the
        # cut after num_beams (which candidates may join the pool).
        gaps += [cands[k_keep - 1][0] - cands[k_keep][0], cands[num_beams - 1][0] - cands[num_beams][0]]
        hits = [c[1][-1] == eos or cur_len + 1 >= max_len for c in top]
        n_gen = cur_len + 1 - p_len
        pool_full = len(pool) == num_beams
        blocked = (pool_full and early_stopping is True) or not improvable
        if not blocked:
            offered = [(c[1], c[0] / n_gen ** length_penalty) for c, h in zip(top[:num_beams], hits) if h]
            if offered:
                merged = sorted(pool + offered, key=lambda c: -c[1])
                if len(merged) > num_beams:
                    gaps.append(merged[num_beams - 1][1] - merged[num_beams][1])
                pool = merged[:num_beams]
        live = [(c[1], c[0]) for c, h in zip(top, hits) if not h]
        if len(live) > num_beams:  # the cut that picks the running beams
            gaps.append(live[num_beams - 1][1] - live[num_beams][1])
        running = live[:num_beams]
        all_hit = all(hits)
        cur_len += 1
        if not all_hit and len(pool) == num_beams and improvable:
            if early_stopping == "never" and length_penalty > 0.0:
                n_best = max_len - p_len
            else:
                n_best = cur_len - p_len
            best_running = running[0][1] / n_best ** length_penalty
            worst = min(s for _, s in pool)
            gaps.append(abs(best_running - worst))
            improvable = best_running > worst
        if all_hit or not improvable or (len(pool) == num_beams and early_stopping is True):
            break
    return pool, min(gaps)


# ---------------------------------------------------------------- run
model = make_model()
names = [n for n, _ in model.named_parameters()]
assert "lm_head.weight" not in names and not list(model.named_buffers()), list(model.named_buffers())
assert names == [k for k in model.state_dict() if k != "lm_head.weight"]
weights = {n: p.detach().clone() for n, p in model.named_parameters()}
W64 = {n: t.numpy().astype(np.float64) for n, t in weights.items()}
shapes = {n: tuple(t.shape) for n, t in weights.items()}
for layer in range(NL):
    p = f"transformer.h.{layer}."
    assert shapes[p + "attn.c_attn.weight"] == (E, 3 * E) and shapes[p + "attn.c_proj.weight"] == (E, E)
    assert shapes[p + "mlp.c_fc.weight"] == (E, 4 * E) and shapes[p + "mlp.c_proj.weight"] == (4 * E, E)

put("gpt2/config", np.array([V, NPOS, E, NL, NH, BOS, EOS], dtype=np.int64))
put("gpt2/names", refvec.text(",".join(names)))
for n in names:
    put(f"gpt2/w/{n}", weights[n])

prompt = [BOS] + np.random.default_rng(PROMPT_SEED).integers(2, V, T_PROMPT - 1).tolist()
assert len(prompt) == T_PROMPT and all(2 <= t < V for t in prompt[1:])
ids = torch.tensor([prompt], dtype=torch.int64)
put("gpt2/prompt", ids[0])

# Full forward, float32 and float64.
logits = model(input_ids=ids, use_cache=False).logits[0]
assert logits.dtype == torch.float32 and logits.shape == (T_PROMPT, V)
model64 = copy.deepcopy(model).to(torch.float64)
assert model64.lm_head.weight is model64.transformer.wte.weight
logits64 = model64(input_ids=ids, use_cache=False).logits[0]
assert logits64.dtype == torch.float64
put("gpt2/logits", logits)
put("gpt2/logits_f64", logits64)
ref = np_forward(W64, prompt)
err64 = close(logits64.numpy(), ref, 1e-10, "logits_f64 vs numpy")
err32 = close(logits.numpy(), ref, 1e-4, "logits vs numpy")

# One token at a time through the cache.
past, rows = None, []
for t in range(T_PROMPT):
    o = model(input_ids=ids[:, t:t + 1], past_key_values=past, use_cache=True)
    past = o.past_key_values
    rows.append(o.logits[0, -1])
cached = torch.stack(rows)
err_cache = close(cached.numpy(), logits.numpy(), 1e-5, "cached vs full")
put("gpt2/cached_logits", cached)
gap_full = top2_gap(logits.numpy())
assert gap_full > 1e-3, gap_full

# Every generate call must run without logits processors.
_orig_get_procs = model._get_logits_processor
_proc_counts = []


def _spy_get_procs(*a, **k):
    procs = _orig_get_procs(*a, **k)
    _proc_counts.append(len(procs))
    return procs


model._get_logits_processor = _spy_get_procs
OFF = dict(min_length=0, no_repeat_ngram_size=0, repetition_penalty=1.0, temperature=1.0, use_cache=True)


def beam_call(m, inp, length_penalty, early_stopping):
    return m.generate(input_ids=inp, attention_mask=torch.ones_like(inp), num_beams=NUM_BEAMS,
                      num_return_sequences=NUM_BEAMS, max_new_tokens=MAX_NEW, do_sample=False,
                      early_stopping=early_stopping, length_penalty=length_penalty, eos_token_id=EOS,
                      pad_token_id=EOS, output_scores=True, return_dict_in_generate=True, **OFF)


bprompt = ids[:, :BEAM_PROMPT]
summary = {}
for tag, lpen, early in (("beam", 1.0, False), ("beam2", 0.5, True)):
    out = beam_call(model, bprompt, lpen, early)
    seqs = out.sequences.numpy()
    scores = out.sequences_scores.numpy()
    bi = out.beam_indices.numpy()
    assert seqs.shape[0] == NUM_BEAMS and scores.shape == (NUM_BEAMS,) and scores.dtype == np.float32
    n_gen = (bi >= 0).sum(axis=1)
    # beam_indices rows are a non-negative prefix followed by -1 padding.
    for i in range(NUM_BEAMS):
        assert (bi[i, :n_gen[i]] >= 0).all() and (bi[i, n_gen[i]:] == -1).all()
    assert seqs.shape[1] == BEAM_PROMPT + n_gen.max()
    lengths = BEAM_PROMPT + n_gen
    for i in range(NUM_BEAMS):
        s, n = seqs[i], int(lengths[i])
        assert (s[:BEAM_PROMPT] == prompt[:BEAM_PROMPT]).all()
        assert (s[n:] == EOS).all()  # padding
        gen = s[BEAM_PROMPT:n]
        assert EOS not in gen[:-1]
        assert (gen[-1] == EOS) == (n < BEAM_PROMPT + MAX_NEW), (tag, i, s, n)
        # Score from a fresh forward over the unpadded sequence.
        for lg, tol in ((model(input_ids=torch.from_numpy(s[None, :n])).logits[0].numpy(), 1e-5), (np_forward(W64, s[:n]), 1e-5)):
            lps = np_log_softmax(np.asarray(lg, dtype=np.float64))
            tot = sum(lps[j - 1, s[j]] for j in range(BEAM_PROMPT, n))
            close(tot / (n - BEAM_PROMPT) ** lpen, scores[i], tol, f"{tag} score {i}")
    ss = np.sort(scores.astype(np.float64))
    assert np.min(np.diff(ss)) > 1e-4, (tag, scores)
    assert (np.diff(scores) <= 0).all(), scores  # best first
    # Independent float64 beam search.
    hyps, min_gap = np_beam(W64, prompt[:BEAM_PROMPT], NUM_BEAMS, MAX_NEW, lpen, early)
    assert len(hyps) == NUM_BEAMS
    for i, (toks, sc) in enumerate(hyps):
        assert toks == seqs[i, :lengths[i]].tolist(), (tag, i, toks, seqs[i])
        close(sc, scores[i], 1e-5, f"{tag} np_beam score {i}")
    assert min_gap > 1e-3, (tag, min_gap)
    # The float64 model gives the same hypotheses.
    out64 = beam_call(model64, bprompt, lpen, early)
    assert torch.equal(out64.sequences, out.sequences), tag
    close(out64.sequences_scores.numpy(), scores, 1e-5, f"{tag} f64 generate scores")

    put(f"gpt2/{tag}/prompt", bprompt[0])
    put(f"gpt2/{tag}/sequences", seqs.astype(np.int64))
    put(f"gpt2/{tag}/scores", scores)
    put(f"gpt2/{tag}/lengths", lengths.astype(np.int64))
    summary[tag] = (seqs, scores, lengths, min_gap)

assert (summary["beam"][2] < BEAM_PROMPT + MAX_NEW).any(), "case 1 needs a hypothesis finished by eos"

# Greedy.
greedy = model.generate(input_ids=bprompt, attention_mask=torch.ones_like(bprompt), do_sample=False, num_beams=1,
                        max_new_tokens=MAX_NEW, eos_token_id=EOS, pad_token_id=EOS, **OFF)[0]
gseq = greedy.numpy()
n = len(gseq)
assert (gseq[:BEAM_PROMPT] == prompt[:BEAM_PROMPT]).all()
assert EOS not in gseq[BEAM_PROMPT:-1] and gseq[-1] == EOS and n < BEAM_PROMPT + MAX_NEW  # stops at eos
glog = model(input_ids=greedy[None]).logits[0].numpy()[BEAM_PROMPT - 1:n - 1]
glog64 = np_forward(W64, gseq)[BEAM_PROMPT - 1:n - 1]
assert (glog.argmax(axis=1) == gseq[BEAM_PROMPT:]).all() and (glog64.argmax(axis=1) == gseq[BEAM_PROMPT:]).all()
gap_greedy = top2_gap(glog)
assert gap_greedy > 1e-3, gap_greedy
put("gpt2/greedy/sequence", greedy)

assert _proc_counts and all(c == 0 for c in _proc_counts), _proc_counts

# ---------------------------------------------------------------- write
print(f"logits: max |f64 - numpy| {err64:.2e}, max |f32 - numpy| {err32:.2e}, max |cached - full| {err_cache:.2e}")
print(f"min top-2 gap: full forward {gap_full:.6f}, greedy steps {gap_greedy:.6f}")
for tag, (seqs, scores, lengths, min_gap) in summary.items():
    print(f"{tag}: lengths {lengths.tolist()}, scores {scores.tolist()}, min decision gap {min_gap:.6f}")
    for s in seqs:
        print("   ", s.tolist())
print("greedy:", gseq.tolist())
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "gpt2.bin")
refvec.write(path, OUT, meta=f"tests/reference/gen_gpt2.py; {refvec.versions()}")
print(f"wrote {path}: {len(OUT) + 1} entries, {os.path.getsize(path)} bytes")
