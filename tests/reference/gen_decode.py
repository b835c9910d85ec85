"""Reference vectors for constml's decoding chapter (tests/decode_*.rs).

Writes tests/reference/decode.bin (CMLREF01, see refvec.py):

* Hugging Face's logits warpers (TemperatureLogitsWarper, TopKLogitsWarper,
  TopPLogitsWarper, MinPLogitsWarper), each alone and chained in generate's order
  (temperature -> top-k -> top-p -> min-p), in float32 and float64, on tie-free
  logits. Every top-p / min-p case is checked to be away from the boundary: the
  kept set must not change when p is moved by +-2e-4 or min_p by a relative
  +-1e-3, and the float32 and float64 runs must keep the same tokens. (Hugging
  Face keeps all ties at the k-th value and sums sorted probabilities in float32;
  constml breaks ties by token id and sums in another order, so the two are
  compared only where neither matters.)
* Small-vocabulary chained cases with the float64 softmax of the processed logits,
  the target distribution of the chi-square sampling test.
* Beam search through `generate(num_beams=..., do_sample=False, ...)` on a small
  deterministic model defined here: next-token logits = A[last token] +
  B[token before it] (the B term is absent for a one-token input), so a beam whose
  state was reordered wrongly gets different logits. Four table sets (two with
  max_new_tokens = 7, two with 12 chosen so that early_stopping="never" and False
  disagree somewhere); for 2, 3, 4 beams, EOS sets {3}, {3, 11}, {}, length
  penalties -1, 0, 1, 2 and every early_stopping mode it stores the returned
  sequences (generated part, u8), their lengths and `sequences_scores`.

Run from the repository root:  python3 tests/reference/gen_decode.py
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refvec  # noqa: E402

from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel  # noqa: E402
from transformers.generation.logits_process import (  # noqa: E402
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.modeling_outputs import CausalLMOutput  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "decode.bin")
rng = np.random.default_rng(20240604)
torch.set_grad_enabled(False)


def warp(procs, x, dtype):
    """Applies a list of HF warpers to one row of logits; returns a numpy row."""
    t = torch.tensor(np.asarray(x, dtype=np.float64), dtype=dtype)[None, :]
    ids = torch.zeros((1, 1), dtype=torch.long)
    out = LogitsProcessorList(procs)(ids, t)
    return out[0].numpy()


def kept(row):
    return np.isfinite(row)


def chain(x, dtype, T=None, k=None, p=None, mp=None):
    procs = []
    if T is not None:
        procs.append(TemperatureLogitsWarper(float(T)))
    if k is not None:
        procs.append(TopKLogitsWarper(int(k)))
    if p is not None:
        procs.append(TopPLogitsWarper(float(p)))
    if mp is not None:
        procs.append(MinPLogitsWarper(float(mp)))
    return warp(procs, x, dtype)


def robust(x, T=None, k=None, p=None, mp=None):
    """True if the kept set is the same in f32 and f64 and under small moves of p, min_p."""
    base = kept(chain(x, torch.float64, T, k, p, mp))
    if not np.array_equal(base, kept(chain(x, torch.float32, T, k, p, mp))):
        return False
    if p is not None and 0.0 < p < 1.0:
        for q in (p - 2e-4, p + 2e-4):
            if not np.array_equal(base, kept(chain(x, torch.float64, T, k, q, mp))):
                return False
    if mp is not None and 0.0 < mp < 1.0:
        for m in (mp * (1 - 1e-3), mp * (1 + 1e-3)):
            if not np.array_equal(base, kept(chain(x, torch.float64, T, k, p, m))):
                return False
    return True


def tie_free_logits(v, peaked=False):
    while True:
        x = (3.0 * rng.standard_normal(v)).astype(np.float32)
        if peaked:
            x[rng.integers(v)] += 9.0
        if len(np.unique(x)) == v:
            return x


entries = {}

# ------------------------------------------------------------- single processors
V = 257
TS = [0.25, 0.7, 1.0, 1.5, 3.0]
KS = [1, 2, 5, 40, 256, 257, 1000]
PS = [0.0, 0.1, 0.3, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0]
MPS = [0.0, 0.01, 0.05, 0.2, 0.5, 0.9, 1.0]
NX = 4


def good_row(x):
    return all(robust(x, p=p) for p in PS) and all(robust(x, mp=m) for m in MPS)


rows = []
while len(rows) < NX:
    x = tie_free_logits(V, peaked=(len(rows) == NX - 1))
    if good_row(x):
        rows.append(x)
X = np.stack(rows)
entries["proc.x"] = X
entries["proc.t"] = np.array(TS, dtype=np.float64)
entries["proc.k"] = np.array(KS, dtype=np.int64)
entries["proc.p"] = np.array(PS, dtype=np.float64)
entries["proc.min_p"] = np.array(MPS, dtype=np.float64)
def mask_of(proc, x, dtype):
    """The kept-mask of one filtering warper; survivors must be the inputs unchanged."""
    row = warp([proc], x, dtype)
    keep = kept(row)
    assert np.array_equal(row[keep], np.asarray(x, dtype=row.dtype)[keep])
    return keep


for name, dtype in (("f32", torch.float32), ("f64", torch.float64)):
    npd = np.float32 if name == "f32" else np.float64
    entries[f"proc.temperature.{name}"] = np.array(
        [[warp([TemperatureLogitsWarper(float(t))], x, dtype) for x in X] for t in TS], dtype=npd)
    # Filters: only which tokens survive (u8 masks, 1 = kept).
    entries[f"proc.top_k.{name}"] = np.array(
        [[mask_of(TopKLogitsWarper(k), x, dtype) for x in X] for k in KS], dtype=np.uint8)
    entries[f"proc.top_p.{name}"] = np.array(
        [[mask_of(TopPLogitsWarper(p), x, dtype) for x in X] for p in PS], dtype=np.uint8)
    entries[f"proc.min_p.{name}"] = np.array(
        [[mask_of(MinPLogitsWarper(m), x, dtype) for x in X] for m in MPS], dtype=np.uint8)

# ------------------------------------------------------------- chained pipeline
# (temperature, top_k, top_p, min_p); NaN / -1 = not set.
CFGS = [
    (None, None, None, None),
    (0.7, 50, 0.9, None),
    (1.3, None, 0.8, 0.05),
    (None, 10, None, 0.1),
    (0.5, 100, 0.95, 0.02),
    (2.0, 5, 0.5, None),
    (1.0, 257, 1.0, 0.0),
    (0.8, 40, 0.9, 0.05),
]
pipe_rows = []
while len(pipe_rows) < 3:
    x = tie_free_logits(V, peaked=(len(pipe_rows) == 2))
    if all(robust(x, *c) for c in CFGS):
        pipe_rows.append(x)
PX = np.stack(pipe_rows)


def enc(c):
    t, k, p, m = c
    return [np.nan if t is None else t, -1.0 if k is None else float(k),
            np.nan if p is None else p, np.nan if m is None else m]


entries["pipe.x"] = PX
entries["pipe.cfg"] = np.array([enc(c) for c in CFGS], dtype=np.float64)
for name, dtype in (("f32", torch.float32), ("f64", torch.float64)):
    npd = np.float32 if name == "f32" else np.float64
    entries[f"pipe.out.{name}"] = np.array(
        [[chain(x, dtype, *c) for x in PX] for c in CFGS], dtype=npd)

# ------------------------------------------------------------- chi-square targets
CV = 16
CHI_CFGS = [
    (None, None, None, None),
    (0.8, 6, None, None),
    (1.2, None, 0.7, None),
    (None, None, None, 0.15),
    (1.5, 10, 0.9, 0.05),
]
chi_rows = []
while len(chi_rows) < 2:
    x = (1.2 * rng.standard_normal(CV)).astype(np.float32)
    if len(np.unique(x)) == CV and all(robust(x, *c) for c in CHI_CFGS):
        chi_rows.append(x)
CX = np.stack(chi_rows)
entries["chi.x"] = CX
entries["chi.cfg"] = np.array([enc(c) for c in CHI_CFGS], dtype=np.float64)
probs = []
for c in CHI_CFGS:
    r = []
    for x in CX:
        z = torch.tensor(chain(x, torch.float64, *c))
        r.append(torch.softmax(z, dim=-1).numpy())
    probs.append(r)
entries["chi.probs"] = np.array(probs, dtype=np.float64)


# ------------------------------------------------------------- beam search
class TableConfig(PretrainedConfig):
    model_type = "constml_table"

    def __init__(self, vocab_size=16, **kw):
        super().__init__(**kw)
        self.vocab_size = vocab_size


class TableLM(PreTrainedModel, GenerationMixin):
    """Next-token logits = A[x_t] + B[x_{t-1}] (no B term for a one-token input)."""

    config_class = TableConfig
    main_input_name = "input_ids"

    def __init__(self, config):
        super().__init__(config)
        v = config.vocab_size
        self.A = torch.nn.Parameter(torch.zeros(v, v), requires_grad=False)
        self.B = torch.nn.Parameter(torch.zeros(v, v), requires_grad=False)

    def forward(self, input_ids=None, attention_mask=None, **kw):
        logits = self.A[input_ids[:, -1]]
        if input_ids.shape[1] >= 2:
            logits = logits + self.B[input_ids[:, -2]]
        return CausalLMOutput(logits=logits[:, None, :])

    def prepare_inputs_for_generation(self, input_ids, **kw):
        return {"input_ids": input_ids}


BV = 16
PROMPT = [1, 5]
BEAMS_SET = [2, 3, 4]
EOS_SETS = [[3], [3, 11], []]
LPS = [-1.0, 0.0, 1.0, 2.0]
EARLY = [False, True, "never"]  # encoded 0, 1, 2


def make_model(a, b):
    model = TableLM(TableConfig(vocab_size=BV))
    model.A.data = torch.tensor(a)
    model.B.data = torch.tensor(b)
    model.eval()
    return model


def run(model, beams, eos, lp, early, max_new):
    kw = dict(
        input_ids=torch.tensor([PROMPT]),
        num_beams=beams,
        num_return_sequences=beams,
        length_penalty=lp,
        early_stopping=early,
        max_new_tokens=max_new,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
        use_cache=False,
    )
    if eos:
        kw["eos_token_id"] = list(eos)
        kw["pad_token_id"] = eos[0]
    else:
        # No EOS: hypotheses end at max_new; pad (never emitted) = 0.
        kw["eos_token_id"] = None
        kw["pad_token_id"] = 0
    return model.generate(**kw)


def table_pair(eos_boost):
    a = (1.5 * rng.standard_normal((BV, BV))).astype(np.float32)
    a[:, 3] += eos_boost  # make EOS likely enough to finish hypotheses early
    a[:, 11] += eos_boost / 2
    b = (0.7 * rng.standard_normal((BV, BV))).astype(np.float32)
    return a, b


# Table sets 0 and 1: MAX_NEW = 7. Sets 2 and 3: MAX_NEW = 12, chosen so that
# early_stopping="never" and False give different results in several settings
# (otherwise nothing would test the "never" bound).
tables = [table_pair(0.8) + (7,) for _ in range(2)]
while len(tables) < 4:
    a, b = table_pair(1.6)
    m = make_model(a, b)
    differ = 0
    for beams in (2, 3):
        for lp in (1.0, 2.0):
            o1 = run(m, beams, [3], lp, False, 12)
            o2 = run(m, beams, [3], lp, "never", 12)
            if not (torch.equal(o1.sequences, o2.sequences)
                    and torch.allclose(o1.sequences_scores, o2.sequences_scores)):
                differ += 1
    if differ >= 2:
        tables.append((a, b, 12))

MAXW = 12
cfg_rows, eos_rows, lp_rows, seq_rows, len_rows, score_rows = [], [], [], [], [], []
for s, (a, b, max_new) in enumerate(tables):
    model = make_model(a, b)
    for beams in BEAMS_SET:
        for eos in EOS_SETS:
            for lp in LPS:
                for ei, early in enumerate(EARLY):
                    out = run(model, beams, eos, lp, early, max_new)
                    gen = out.sequences[:, len(PROMPT):].numpy()
                    lens = (out.beam_indices.numpy() >= 0).sum(axis=1)
                    seq = np.zeros((4, MAXW), dtype=np.uint8)  # padded with 0 past len
                    ln = np.zeros(4, dtype=np.uint8)
                    sc = np.full(4, np.nan, dtype=np.float32)
                    for i in range(beams):
                        n = int(lens[i])
                        seq[i, :n] = gen[i, :n]
                        ln[i] = n
                        sc[i] = out.sequences_scores[i].item()
                        # Sanity: a hypothesis ends in EOS or has max_new tokens.
                        assert n == max_new or (eos and gen[i, n - 1] in eos), (gen[i], n)
                        assert not any(t in eos for t in gen[i, :n - 1])
                    cfg_rows.append([s, beams, max_new, len(eos), ei, beams])
                    eos_rows.append((list(eos) + [-1, -1])[:2])
                    lp_rows.append(lp)
                    seq_rows.append(seq)
                    len_rows.append(ln)
                    score_rows.append(sc)

tables_a = [t[0] for t in tables]
tables_b = [t[1] for t in tables]
entries["beam.a"] = np.stack(tables_a)
entries["beam.b"] = np.stack(tables_b)
entries["beam.prompt"] = np.array(PROMPT, dtype=np.int64)
entries["beam.cfg"] = np.array(cfg_rows, dtype=np.int64)
entries["beam.eos"] = np.array(eos_rows, dtype=np.int64)
entries["beam.lp"] = np.array(lp_rows, dtype=np.float64)
entries["beam.seq"] = np.stack(seq_rows)
entries["beam.len"] = np.stack(len_rows)
entries["beam.score"] = np.stack(score_rows)

refvec.write(OUT, entries, meta="gen_decode.py; " + refvec.versions())
print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes, {len(cfg_rows)} beam cases")
