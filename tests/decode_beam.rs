//! Beam search against Hugging Face `generate(num_beams=…)` (transformers 5.24) on
//! the table model of tests/reference/gen_decode.py: next-token logits =
//! A[last token] + B[token before it]. Also the bad-input and model-error paths.

mod common;

use common::{RefFile, entry, to_vec};
use constml::decode::{
    BeamConfig, BeamModel, BeamScratch, EarlyStopping, Hypotheses, beam_search, beam_search_with,
};
// The runtime-shaped face (feature `std`): checked against the const face.
#[cfg(feature = "std")]
use constml::decode::{BeamScratchDyn, HypothesesDyn, beam_search_dyn, beam_search_dyn_with};
use constml::{Error, Real, Result, Scalar};

/// Asserts that `$e` is an `Err` matching the `Error` pattern `$pat`.
macro_rules! assert_err {
    ($e:expr, $pat:pat) => {{
        let r = $e;
        assert!(matches!(r, Err($pat)), "{}: got {r:?}", stringify!($e));
    }};
}

static BIN: &[u8] = include_bytes!("reference/decode.bin");
const V: usize = 16;
/// MAX_NEW of the table sets 0 and 1 (sets 2 and 3 use 12).
const MAX_NEW: usize = 7;
/// Row width of the stored sequences.
const MAXW: usize = 12;

/// The reference model. Each beam slot's state is its last two tokens and the next
/// position it expects; a wrong `pos` is reported as a model error.
#[derive(Clone)]
struct Table<T> {
    a: Vec<T>,
    b: Vec<T>,
    state: Vec<Slot>,
    steps: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    prev: Option<usize>,
    last: Option<usize>,
    next_pos: usize,
}

impl<T: Real> Table<T> {
    fn new(a: Vec<T>, b: Vec<T>, beams: usize) -> Self {
        Self {
            a,
            b,
            state: vec![Slot::default(); beams],
            steps: 0,
        }
    }
}

impl<T: Real> BeamModel<T> for Table<T> {
    fn step(&mut self, beam: usize, token: usize, pos: usize, logits: &mut [T]) -> Result<()> {
        self.steps += 1;
        let st = self.state.get_mut(beam).ok_or(Error::Model {
            what: "beam out of range",
        })?;
        if pos != st.next_pos {
            return Err(Error::Model {
                what: "unexpected position",
            });
        }
        st.prev = st.last;
        st.last = Some(token);
        st.next_pos += 1;
        for (j, l) in logits.iter_mut().enumerate() {
            *l = self.a[token * V + j];
            if let Some(p) = st.prev {
                *l += self.b[p * V + j];
            }
        }
        Ok(())
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        self.state = parents.iter().map(|&p| self.state[p]).collect();
        Ok(())
    }
}

struct Case {
    table: usize,
    beams: usize,
    max_new: usize,
    eos: Vec<usize>,
    early: EarlyStopping,
    lp: f64,
    seqs: Vec<Vec<usize>>,
    scores: Vec<f64>,
}

/// The cases, the A and B tables of every table set, and the prompt.
type Reference = (Vec<Case>, Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<usize>);

fn cases() -> Reference {
    let f = RefFile::parse(BIN).unwrap();
    let cfg = entry(&f, "beam.cfg");
    let eos = entry(&f, "beam.eos");
    let lp = entry(&f, "beam.lp");
    let seq = entry(&f, "beam.seq");
    let len = entry(&f, "beam.len");
    let score = entry(&f, "beam.score");
    let a: Vec<f64> = to_vec(&entry(&f, "beam.a"));
    let b: Vec<f64> = to_vec(&entry(&f, "beam.b"));
    let prompt: Vec<usize> = {
        let e = entry(&f, "beam.prompt");
        (0..e.len()).map(|i| e.get_i64(i) as usize).collect()
    };
    let n = cfg.dims()[0];
    let mut out = Vec::new();
    for c in 0..n {
        let g = |j: usize| cfg.get_i64(c * 6 + j) as usize;
        let beams = g(1);
        let n_eos = g(3);
        let early = match g(4) {
            0 => EarlyStopping::Heuristic,
            1 => EarlyStopping::Eager,
            _ => EarlyStopping::Never,
        };
        let mut seqs = Vec::new();
        let mut scores = Vec::new();
        for i in 0..beams {
            let l = len.get(c * 4 + i) as usize;
            seqs.push(
                (0..l)
                    .map(|t| seq.get((c * 4 + i) * MAXW + t) as usize)
                    .collect(),
            );
            scores.push(score.get(c * 4 + i));
        }
        out.push(Case {
            table: g(0),
            beams,
            max_new: g(2),
            eos: (0..n_eos)
                .map(|j| eos.get_i64(c * 2 + j) as usize)
                .collect(),
            early,
            lp: lp.get(c),
            seqs,
            scores,
        });
    }
    let split = |t: &Vec<f64>| t.chunks(V * V).map(|c| c.to_vec()).collect::<Vec<_>>();
    (out, split(&a), split(&b), prompt)
}

fn table<T: Real>(a: &[f64], b: &[f64], beams: usize) -> Table<T> {
    Table::new(
        a.iter().map(|&x| T::from_f64(x)).collect(),
        b.iter().map(|&x| T::from_f64(x)).collect(),
        beams,
    )
}

/// Runs the const face with `BEAMS` beams (and the dyn face) and returns both.
fn run_const<T: Real, const BEAMS: usize, const N: usize>(
    model: &mut Table<T>,
    prompt: &[usize],
    cfg: &BeamConfig<'_, T>,
    scalar: bool,
) -> Vec<(Vec<usize>, T)> {
    let mut scratch = Box::new(BeamScratch::<T, V, BEAMS, N>::new());
    let mut out = Hypotheses::<T, BEAMS, N>::new();
    let n = if scalar {
        beam_search_with::<Scalar, _, V, BEAMS, N>(model, prompt, cfg, &mut scratch, &mut out)
    } else {
        beam_search(model, prompt, cfg, &mut scratch, &mut out)
    }
    .unwrap();
    assert_eq!(n, out.len());
    out.iter().map(|(t, s)| (t.to_vec(), s)).collect()
}

#[cfg(feature = "std")]
fn run_dyn<T: Real>(
    model: &mut Table<T>,
    prompt: &[usize],
    cfg: &BeamConfig<'_, T>,
    (beams, max_new): (usize, usize),
    scalar: bool,
) -> Vec<(Vec<usize>, T)> {
    let mut scratch = BeamScratchDyn::<T>::new(V, beams, max_new).unwrap();
    let mut out = HypothesesDyn::<T>::new(beams, max_new).unwrap();
    let n = if scalar {
        beam_search_dyn_with::<Scalar, _>(model, prompt, cfg, &mut scratch, &mut out)
    } else {
        beam_search_dyn(model, prompt, cfg, &mut scratch, &mut out)
    }
    .unwrap();
    assert_eq!(n, out.len());
    out.iter().map(|(t, s)| (t.to_vec(), s)).collect()
}

fn check_against_hf<T: Real>(scalar: bool) {
    let (cases, a, b, prompt) = cases();
    assert_eq!(cases.len(), 432);
    // The reference is float32 (generate casts logits to float32), so f64 runs are
    // held to float32-level agreement.
    let (rtol, atol) = (1e-5, 1e-5);
    let mut finished_early = 0;
    for (ci, c) in cases.iter().enumerate() {
        let cfg = BeamConfig::new(&c.eos[..])
            .with_length_penalty(T::from_f64(c.lp))
            .with_early_stopping(c.early)
            .with_num_return(c.beams);
        let run = |cfg: &BeamConfig<'_, T>| {
            let mut m = table::<T>(&a[c.table], &b[c.table], c.beams);
            match (c.beams, c.max_new) {
                (2, 7) => run_const::<T, 2, 7>(&mut m, &prompt, cfg, scalar),
                (3, 7) => run_const::<T, 3, 7>(&mut m, &prompt, cfg, scalar),
                (4, 7) => run_const::<T, 4, 7>(&mut m, &prompt, cfg, scalar),
                (2, 12) => run_const::<T, 2, 12>(&mut m, &prompt, cfg, scalar),
                (3, 12) => run_const::<T, 3, 12>(&mut m, &prompt, cfg, scalar),
                (4, 12) => run_const::<T, 4, 12>(&mut m, &prompt, cfg, scalar),
                (b, n) => panic!("no instantiation for {b} beams, {n} new tokens"),
            }
        };
        let got = run(&cfg);
        #[cfg(feature = "std")]
        {
            let mut md = table::<T>(&a[c.table], &b[c.table], c.beams);
            let got_dyn = run_dyn(&mut md, &prompt, &cfg, (c.beams, c.max_new), scalar);
            assert_eq!(got, got_dyn, "case {ci}: dyn face differs from const face");
        }
        let what = format!(
            "case {ci} (table {}, {} beams, eos {:?}, lp {}, {:?})",
            c.table, c.beams, c.eos, c.lp, c.early
        );
        assert_eq!(got.len(), c.seqs.len(), "{what}: number of hypotheses");
        for (i, ((toks, s), (want_t, &want_s))) in
            got.iter().zip(c.seqs.iter().zip(&c.scores)).enumerate()
        {
            assert_eq!(toks, want_t, "{what}: hypothesis {i} tokens");
            let s = Real::as_f64(*s);
            assert!(
                (s - want_s).abs() <= atol + rtol * want_s.abs(),
                "{what}: hypothesis {i} score {s} vs HF {want_s}"
            );
        }
        if got.iter().all(|(t, _)| t.len() < c.max_new) {
            finished_early += 1;
        }
        // num_return = 1 gives the best hypothesis alone.
        let one = run(&cfg.with_num_return(1));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0], got[0], "{what}: num_return = 1");
    }
    // The cases exercise the stopping rules, not only the length limit.
    assert!(
        finished_early > 20,
        "only {finished_early} cases stopped before MAX_NEW"
    );
}

#[test]
fn matches_hf_generate_f32() {
    check_against_hf::<f32>(false);
}

#[test]
fn matches_hf_generate_f64() {
    check_against_hf::<f64>(false);
}

#[test]
fn matches_hf_generate_scalar_backend() {
    check_against_hf::<f32>(true);
}

#[test]
fn early_stopping_modes_differ_somewhere() {
    // Guard against a reference in which the modes happen to coincide: each pair
    // of modes (cases come in groups False, True, "never") must disagree somewhere.
    let (cases, ..) = cases();
    let same = |a: &Case, b: &Case| a.seqs == b.seqs && a.scores == b.scores;
    let (mut false_true, mut false_never) = (0, 0);
    for g in cases.chunks(3) {
        assert_eq!(
            [g[0].early, g[1].early, g[2].early],
            [
                EarlyStopping::Heuristic,
                EarlyStopping::Eager,
                EarlyStopping::Never
            ]
        );
        false_true += !same(&g[0], &g[1]) as usize;
        false_never += !same(&g[0], &g[2]) as usize;
    }
    assert!(
        false_true > 5,
        "True and False differ in {false_true} groups only"
    );
    assert!(
        false_never > 3,
        "never and False differ in {false_never} groups only"
    );
}

// ------------------------------------------------------------------ bad input

fn small() -> Table<f32> {
    let (_, a, b, _) = cases();
    table::<f32>(&a[0], &b[0], 2)
}

fn search(
    model: &mut impl BeamModel<f32>,
    prompt: &[usize],
    cfg: &BeamConfig<'_, f32>,
) -> Result<usize> {
    let mut scratch = Box::new(BeamScratch::<f32, V, 2, MAX_NEW>::new());
    let mut out = Hypotheses::<f32, 2, MAX_NEW>::new();
    beam_search(model, prompt, cfg, &mut scratch, &mut out)
}

#[test]
fn bad_parameters_are_errors() {
    let mut m = small();
    let eos = [3usize];
    let cfg = BeamConfig::<f32>::new(eos);
    assert_err!(
        search(&mut m, &[1], &cfg.with_num_return(3)),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        search(&mut m, &[1], &cfg.with_num_return(0)),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        search(&mut m, &[1], &cfg.with_length_penalty(f32::NAN)),
        Error::InvalidParameter { .. }
    );
    assert_err!(search(&mut m, &[], &cfg), Error::Empty { .. });
    assert_err!(
        search(&mut m, &[1, 16], &cfg),
        Error::OutOfRange {
            index: 16,
            len: 16,
            ..
        }
    );
    let bad_eos = [99usize];
    assert_err!(
        search(&mut m, &[1], &BeamConfig::new(bad_eos)),
        Error::OutOfRange { index: 99, .. }
    );
}

#[cfg(feature = "std")]
#[test]
fn dyn_face_rejects_bad_shapes() {
    let mut m = small();
    let cfg = BeamConfig::<f32>::new([3]);
    for (v, beams, max_new) in [(0, 2, 4), (16, 0, 4), (16, 2, 0)] {
        let mut s = BeamScratchDyn::<f32>::new(v, beams, max_new).unwrap();
        let mut o = HypothesesDyn::<f32>::new(beams, max_new).unwrap();
        assert_err!(
            beam_search_dyn(&mut m, &[1], &cfg, &mut s, &mut o),
            Error::Empty { .. }
        );
    }
    let mut s = BeamScratchDyn::<f32>::new(16, 2, 4).unwrap();
    let mut o = HypothesesDyn::<f32>::new(3, 4).unwrap();
    assert_err!(
        beam_search_dyn_with::<Scalar, _>(&mut m, &[1], &cfg, &mut s, &mut o),
        Error::ShapeMismatch { .. }
    );
    assert!(BeamScratchDyn::<f32>::new(usize::MAX, 2, 4).is_err());
}

/// Wraps the table model and fails on demand.
struct Failing {
    inner: Table<f32>,
    fail_step: Option<usize>,
    fail_reorder: Option<usize>,
    nan_at: Option<usize>,
    reorders: usize,
}

impl BeamModel<f32> for Failing {
    fn step(&mut self, beam: usize, token: usize, pos: usize, logits: &mut [f32]) -> Result<()> {
        if Some(self.inner.steps) == self.fail_step {
            return Err(Error::Model {
                what: "step failed",
            });
        }
        let at = self.inner.steps;
        self.inner.step(beam, token, pos, logits)?;
        if Some(at) == self.nan_at {
            logits[5] = f32::NAN;
        }
        Ok(())
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        self.reorders += 1;
        if Some(self.reorders) == self.fail_reorder {
            return Err(Error::Model {
                what: "reorder failed",
            });
        }
        self.inner.reorder(parents)
    }
}

fn failing(
    fail_step: Option<usize>,
    fail_reorder: Option<usize>,
    nan_at: Option<usize>,
) -> Failing {
    Failing {
        inner: small(),
        fail_step,
        fail_reorder,
        nan_at,
        reorders: 0,
    }
}

#[test]
fn model_errors_are_returned_unchanged() {
    let cfg = BeamConfig::<f32>::new([]).with_early_stopping(EarlyStopping::Never);
    for at in [0, 1, 2, 5] {
        let mut m = failing(Some(at), None, None);
        assert_eq!(
            search(&mut m, &[1, 5], &cfg),
            Err(Error::Model {
                what: "step failed"
            })
        );
    }
    for at in [1, 2, 3] {
        let mut m = failing(None, Some(at), None);
        assert_eq!(
            search(&mut m, &[1, 5], &cfg),
            Err(Error::Model {
                what: "reorder failed"
            })
        );
    }
    // Sanity: without failures the same search succeeds.
    assert_eq!(search(&mut failing(None, None, None), &[1, 5], &cfg), Ok(1));
}

#[test]
fn nan_logits_are_errors() {
    let cfg = BeamConfig::<f32>::new([]);
    for at in [1, 2, 4] {
        let mut m = failing(None, None, Some(at));
        assert_err!(search(&mut m, &[1, 5], &cfg), Error::NaN { .. });
    }
}

/// A processor that forbids one token.
struct Forbid {
    inner: Table<f32>,
    token: usize,
    seen: Vec<usize>,
}

impl BeamModel<f32> for Forbid {
    fn step(&mut self, beam: usize, token: usize, pos: usize, logits: &mut [f32]) -> Result<()> {
        self.inner.step(beam, token, pos, logits)
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        self.inner.reorder(parents)
    }
    fn process(&mut self, _beam: usize, generated: &[usize], log_probs: &mut [f32]) -> Result<()> {
        self.seen.push(generated.len());
        log_probs[self.token] = f32::NEG_INFINITY;
        Ok(())
    }
}

#[test]
fn processors_see_log_probs_and_can_forbid_tokens() {
    // Without the processor, the best hypotheses use some token; forbid it.
    let mut m = small();
    let cfg = BeamConfig::<f32>::new([3]).with_num_return(2);
    let mut scratch = Box::new(BeamScratch::<f32, V, 2, MAX_NEW>::new());
    let mut out = Hypotheses::<f32, 2, MAX_NEW>::new();
    beam_search(&mut m, &[1, 5], &cfg, &mut scratch, &mut out).unwrap();
    let common = out.tokens(0).unwrap()[0];
    let mut f = Forbid {
        inner: small(),
        token: common,
        seen: Vec::new(),
    };
    beam_search(&mut f, &[1, 5], &cfg, &mut scratch, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    for (t, s) in out.iter() {
        assert!(!t.contains(&common), "{t:?} contains forbidden {common}");
        assert!(s.is_finite());
    }
    assert_eq!(f.seen[0], 0, "first step: no generated tokens yet");
    assert!(f.seen.iter().any(|&n| n > 0));
}

#[test]
fn all_forbidden_is_no_candidates() {
    struct Nothing(Table<f32>);
    impl BeamModel<f32> for Nothing {
        fn step(&mut self, b: usize, t: usize, p: usize, l: &mut [f32]) -> Result<()> {
            self.0.step(b, t, p, l)?;
            l.fill(f32::NEG_INFINITY);
            Ok(())
        }
        fn reorder(&mut self, parents: &[usize]) -> Result<()> {
            self.0.reorder(parents)
        }
    }
    let cfg = BeamConfig::<f32>::new([3]);
    assert_eq!(
        search(&mut Nothing(small()), &[1], &cfg),
        Err(Error::NoCandidates)
    );
}

#[test]
fn one_beam_is_greedy_with_length_limit() {
    // BEAMS = 1 without EOS: the hypothesis is the greedy continuation.
    let (_, a, b, _) = cases();
    let mut m = table::<f32>(&a[1], &b[1], 1);
    let mut scratch = BeamScratch::<f32, V, 1, 5>::new();
    let mut out = Hypotheses::<f32, 1, 5>::new();
    beam_search(&mut m, &[2], &BeamConfig::new([]), &mut scratch, &mut out).unwrap();
    let toks = out.tokens(0).unwrap().to_vec();
    assert_eq!(toks.len(), 5);
    // Greedy by hand through the same model.
    let mut g = table::<f32>(&a[1], &b[1], 1);
    let mut logits = [0.0f32; V];
    let mut tok = 2;
    let mut total = 0.0f32;
    for (pos, &want) in toks.iter().enumerate() {
        g.step(0, tok, pos, &mut logits).unwrap();
        let best = constml::decode::greedy(&logits).unwrap();
        assert_eq!(best, want);
        let mut lp = logits;
        <constml::Simd as constml::Backend>::log_softmax(&mut lp);
        total += lp[best];
        tok = best;
    }
    let s = out.score(0).unwrap();
    assert!((s - total / 5.0).abs() < 1e-5, "{s} vs {}", total / 5.0);
}

/// A model of random logits (including −∞, huge and, optionally, +∞ values) whose
/// processor forbids a random token now and then.
#[cfg(feature = "std")]
struct Random {
    state: u32,
    v: usize,
    allow_pinf: bool,
}

#[cfg(feature = "std")]
impl Random {
    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        self.state as usize
    }
}

#[cfg(feature = "std")]
impl BeamModel<f32> for Random {
    fn step(&mut self, _beam: usize, _token: usize, _pos: usize, logits: &mut [f32]) -> Result<()> {
        const VALS: [f32; 10] = [
            f32::NEG_INFINITY,
            -1e30,
            -50.0,
            -1.0,
            0.0,
            0.5,
            3.0,
            1e30,
            f32::MAX,
            f32::INFINITY,
        ];
        assert_eq!(logits.len(), self.v);
        let n = if self.allow_pinf {
            VALS.len()
        } else {
            VALS.len() - 1
        };
        for l in logits.iter_mut() {
            *l = VALS[self.next() % n];
        }
        Ok(())
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        assert!(parents.iter().all(|&p| p < parents.len()));
        Ok(())
    }
    fn process(&mut self, _beam: usize, _generated: &[usize], log_probs: &mut [f32]) -> Result<()> {
        if self.next().is_multiple_of(4) {
            let i = self.next() % log_probs.len();
            log_probs[i] = f32::NEG_INFINITY;
        }
        Ok(())
    }
}

/// Random shapes, configurations and models: an error of the documented kinds or
/// well-formed hypotheses (tokens `< V`, EOS only at the end, at most `max_new`
/// tokens, sorted scores) — never a panic.
#[cfg(feature = "std")]
#[test]
fn random_models_never_panic_or_escape_the_vocabulary() {
    let mut g = Random {
        state: 12345,
        v: 0,
        allow_pinf: false,
    };
    let (mut ok, mut err) = (0, 0);
    for it in 0..5000u32 {
        let v = 1 + g.next() % 6;
        let beams = 1 + g.next() % 4;
        let max_new = 1 + g.next() % 5;
        let eos: Vec<usize> = (0..g.next() % 4).map(|_| g.next() % v).collect();
        let prompt: Vec<usize> = (0..1 + g.next() % 3).map(|_| g.next() % v).collect();
        let cfg = BeamConfig::new(&eos)
            .with_length_penalty([-2.0f32, 0.0, 1.0, 2.0][g.next() % 4])
            .with_early_stopping(
                [
                    EarlyStopping::Eager,
                    EarlyStopping::Heuristic,
                    EarlyStopping::Never,
                ][g.next() % 3],
            )
            .with_num_return(1 + g.next() % beams);
        let mut m = Random {
            state: it * 2 + 1,
            v,
            allow_pinf: it % 3 == 0,
        };
        let mut s = BeamScratchDyn::<f32>::new(v, beams, max_new).unwrap();
        let mut o = HypothesesDyn::<f32>::new(beams, max_new).unwrap();
        match beam_search_dyn(&mut m, &prompt, &cfg, &mut s, &mut o) {
            Ok(n) => {
                ok += 1;
                assert!(n == o.len() && n <= cfg.num_return, "case {it}");
                let mut prev = f32::INFINITY;
                for (toks, score) in o.iter() {
                    assert!(
                        !toks.is_empty() && toks.len() <= max_new,
                        "case {it}: {toks:?}"
                    );
                    assert!(toks.iter().all(|&t| t < v), "case {it}: {toks:?}");
                    assert!(
                        toks[..toks.len() - 1].iter().all(|t| !eos.contains(t)),
                        "case {it}: {toks:?}"
                    );
                    assert!(score <= prev, "case {it}: scores not sorted");
                    prev = score;
                }
            }
            Err(e) => {
                err += 1;
                assert!(
                    matches!(
                        e,
                        Error::NaN { .. }
                            | Error::NoCandidates
                            | Error::InvalidParameter {
                                what: "beam_search: model logits",
                                ..
                            }
                            // Logits of ±f32::MAX give log-probs near −3.4e38,
                            // which a negative length penalty scales past f32.
                            | Error::InvalidParameter {
                                what: "beam_search: length_penalty",
                                ..
                            }
                    ),
                    "case {it}: {e:?}"
                );
            }
        }
    }
    assert!(
        ok > 1000 && err > 100,
        "{ok} searches succeeded, {err} failed"
    );
}
