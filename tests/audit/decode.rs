//! Bad-input audit of `constml::decode`: for every public function, each invalid
//! input is fed in and the exact outcome checked — the `Err` variant, that the
//! caller's data is left alone where the docs promise it, and the documented
//! propagation (NaN through `repro_exp`, `None` from out-of-range accessors).

use std::convert::Infallible;

use constml::decode::{
    BeamConfig, BeamModel, BeamScratch, BeamScratchDyn, EarlyStopping, EosIds, Hypotheses,
    HypothesesDyn, Sampler, SamplerScratch, SamplerScratchDyn, SelectScratch, SelectScratchDyn,
    beam_search, beam_search_dyn, beam_search_dyn_with, beam_search_with, greedy, greedy_dyn,
    greedy_dyn_with, greedy_with, min_p, min_p_dyn, min_p_probs, min_p_probs_dyn, repro_exp,
    sample_probs, sample_probs_dyn, temperature, temperature_dyn, top_k, top_k_dyn, top_p,
    top_p_dyn, top_p_probs, top_p_probs_dyn, uniform,
};
use constml::{Error, Result, Scalar, Simd};
use rand_core::{Rng, SeedableRng, TryRng};
use rand_xoshiro::Xoshiro128PlusPlus;

const NINF: f32 = f32::NEG_INFINITY;

/// Fails unless `$e` evaluates to an `Err` whose error matches `$pat`.
macro_rules! expect_err {
    ($e:expr, $pat:pat if $cond:expr) => {{
        let got = $e;
        assert!(
            matches!(got, Err($pat) if $cond),
            "`{}` gave {got:?}",
            stringify!($e)
        );
    }};
    ($e:expr, $pat:pat) => {{
        let got = $e;
        assert!(
            matches!(got, Err($pat)),
            "`{}` gave {got:?}",
            stringify!($e)
        );
    }};
}

/// Bit patterns, so that NaN and the sign of zero compare exactly.
fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// The error a bad input must give.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `Error::NaN`.
    NaN,
    /// `Error::InvalidParameter`.
    Invalid,
    /// `Error::NoCandidates`.
    NoCandidates,
}

/// Logit vectors every logits-taking filter must reject, with the expected
/// kind (+∞ is an invalid logit, all −∞ leaves no candidate).
fn bad_logits() -> [([f32; 4], Kind); 5] {
    [
        ([0.0, f32::NAN, 1.0, 2.0], Kind::NaN),
        ([f32::NAN, f32::INFINITY, 1.0, 2.0], Kind::NaN),
        ([0.0, f32::INFINITY, 1.0, 2.0], Kind::Invalid),
        ([NINF, f32::INFINITY, NINF, NINF], Kind::Invalid),
        ([NINF; 4], Kind::NoCandidates),
    ]
}

/// Checks `r` against `kind`.
fn check_kind<T: core::fmt::Debug>(r: Result<T>, kind: Kind, ctx: &str) {
    let ok = match kind {
        Kind::NaN => matches!(r, Err(Error::NaN { .. })),
        Kind::Invalid => matches!(r, Err(Error::InvalidParameter { .. })),
        Kind::NoCandidates => matches!(r, Err(Error::NoCandidates)),
    };
    assert!(ok, "{ctx}: {r:?}, expected {kind:?}");
}

/// Weight vectors the probability-taking functions must reject, with the kind.
fn bad_weights() -> [([f32; 4], Kind); 9] {
    [
        ([0.25, -0.5, 0.25, 0.5], Kind::Invalid),
        ([0.25, NINF, 0.25, 0.5], Kind::Invalid),
        ([0.25, f32::INFINITY, 0.25, 0.5], Kind::Invalid),
        ([0.25, f32::NAN, 0.25, 0.5], Kind::NaN),
        ([f32::MAX, f32::MAX, 1.0, 0.0], Kind::Invalid), // finite entries, infinite sum
        ([0.0; 4], Kind::NoCandidates),
        ([0.0, -0.0, 0.0, -0.0], Kind::NoCandidates),
        // Mixed offenders: the first one in token order decides.
        ([0.5, -1.0, f32::NAN, 0.5], Kind::Invalid),
        ([0.5, f32::NAN, -1.0, 0.5], Kind::NaN),
    ]
}

/// Runs a filter's const face `f` and runtime face `g` on copies of `x`:
/// each must fail with `kind` and leave its copy bit for bit as it was.
fn check_faces(
    x: [f32; 4],
    kind: Kind,
    ctx: &str,
    f: impl FnOnce(&mut [f32; 4]) -> Result<()>,
    g: impl FnOnce(&mut [f32]) -> Result<()>,
) {
    let mut y = x;
    check_kind(f(&mut y), kind, ctx);
    assert_eq!(bits(&y), bits(&x), "{ctx}: {x:?} changed");
    let mut d = x.to_vec();
    check_kind(g(&mut d), kind, &format!("{ctx} (dyn)"));
    assert_eq!(bits(&d), bits(&x), "{ctx} (dyn): {x:?} changed");
}

/// A bad input of a filter: the values, the error they must give with the
/// parameter.
type Case<P> = ([f32; 4], Kind, P);

/// The cases of a filter: `x` with each parameter of `bad` (invalid), then
/// each of the bad `vectors` with each (valid) parameter of `ok`.
fn cases<P: Copy>(x: [f32; 4], bad: &[P], vectors: &[([f32; 4], Kind)], ok: &[P]) -> Vec<Case<P>> {
    let bad = bad.iter().map(|&p| (x, Kind::Invalid, p));
    let vectors = vectors
        .iter()
        .flat_map(|&(v, kind)| ok.iter().map(move |&p| (v, kind, p)));
    bad.chain(vectors).collect()
}

/// Runs every case through a filter's const face `f` and runtime face `g`
/// (see [`check_faces`]).
fn check_filter<P: Copy + core::fmt::Debug>(
    name: &str,
    cases: &[Case<P>],
    mut f: impl FnMut(&mut [f32; 4], P) -> Result<()>,
    mut g: impl FnMut(&mut [f32], P) -> Result<()>,
) {
    for &(x, kind, p) in cases {
        let ctx = format!("{name} {p:?}");
        check_faces(x, kind, &ctx, |y| f(y, p), |d| g(d, p));
    }
}

/// [`check_filter`] for a filter that takes a selection scratch.
fn check_select_filter<P: Copy + core::fmt::Debug>(
    name: &str,
    cases: &[Case<P>],
    f: impl Fn(&mut [f32; 4], P, &mut SelectScratch<f32, 4>) -> Result<()>,
    g: impl Fn(&mut [f32], P, &mut SelectScratchDyn<f32>) -> Result<()>,
) {
    let mut s = SelectScratch::new();
    let mut sd = SelectScratchDyn::new(4).unwrap();
    check_filter(name, cases, |y, p| f(y, p, &mut s), |d, p| g(d, p, &mut sd));
}

/// The runtime face `g` of a select filter (its parameter fixed), given
/// scratches of each size in `sizes`: an empty slice is `Empty` whatever the
/// scratch; `x` with a scratch not of its length is `LengthMismatch`, and
/// left alone.
fn check_select_scratch(
    x: [f32; 4],
    sizes: &[usize],
    mut g: impl FnMut(&mut [f32], &mut SelectScratchDyn<f32>) -> Result<()>,
) {
    let mut sd = SelectScratchDyn::<f32>::new(4).unwrap();
    expect_err!(g(&mut [], &mut sd), Error::Empty { .. });
    for &n in sizes {
        let mut wrong = SelectScratchDyn::<f32>::new(n).unwrap();
        expect_err!(g(&mut [], &mut wrong), Error::Empty { .. });
        let mut d = x.to_vec();
        expect_err!(
            g(&mut d, &mut wrong),
            Error::LengthMismatch { expected: 4, found, .. } if found == n
        );
        assert_eq!(bits(&d), bits(&x), "scratch of {n}");
    }
}

// ------------------------------------------------------------------ greedy

#[test]
fn audit_greedy_bad_logits_all_faces() {
    for (x, kind) in [
        ([0.0f32, f32::NAN, 1.0, 2.0], Kind::NaN),
        ([f32::NAN, f32::INFINITY, 1.0, 2.0], Kind::NaN),
        ([NINF; 4], Kind::NoCandidates),
    ] {
        check_kind(greedy(&x), kind, "greedy");
        check_kind(greedy_with::<Scalar, _, 4>(&x), kind, "greedy_with Scalar");
        check_kind(greedy_with::<Simd, _, 4>(&x), kind, "greedy_with Simd");
        check_kind(greedy_dyn(&x[..]), kind, "greedy_dyn");
        check_kind(greedy_dyn_with::<Scalar, _>(&x[..]), kind, "dyn Scalar");
    }
    // A long vector, so the SIMD body (not only the tail) sees the NaN.
    let mut long = vec![0.5f64; 100];
    long[67] = f64::NAN;
    expect_err!(greedy_dyn(&long), Error::NaN { .. });
    expect_err!(greedy_dyn_with::<Simd, _>(&long), Error::NaN { .. });
    // +∞ is a valid logit here: the first one wins.
    let inf = [0.0f32, f32::INFINITY, 1.0, f32::INFINITY];
    assert_eq!(greedy(&inf), Ok(1));
    assert_eq!(greedy_dyn_with::<Scalar, _>(&inf[..]), Ok(1));
    // One finite logit among −∞ is enough.
    assert_eq!(greedy(&[NINF, NINF, -1e30, NINF]), Ok(2));
    // The runtime face: an empty vocabulary.
    expect_err!(greedy_dyn::<f32>(&[]), Error::Empty { .. });
    expect_err!(greedy_dyn_with::<Scalar, f64>(&[]), Error::Empty { .. });
    expect_err!(greedy_dyn_with::<Simd, f32>(&[]), Error::Empty { .. });
}

// ------------------------------------------------------------------ temperature

#[test]
fn audit_temperature_bad_inputs_leave_logits_alone() {
    let x = [1.0f32, 3.0, -2.0, 0.5];
    let bad = [-1.0f32, -1e-30, f32::NAN, f32::INFINITY, NINF];
    let cases = cases(x, &bad, &bad_logits(), &[0.0, 0.5, 1.0]);
    check_filter("temperature", &cases, temperature, temperature_dyn);
    expect_err!(temperature_dyn::<f32>(&mut [], 1.0), Error::Empty { .. });
    expect_err!(temperature_dyn::<f64>(&mut [], 0.0), Error::Empty { .. });
    // The edges that are valid: 0 (greedy) and a tiny T whose max / T overflows.
    for t in [0.0, -0.0, 1e-40] {
        let mut y = x;
        temperature(&mut y, t).unwrap();
        assert_eq!(y, [NINF, 3.0, NINF, NINF], "t {t}");
    }
}

// ------------------------------------------------------------------ top-k

#[test]
fn audit_top_k_bad_inputs_leave_logits_alone() {
    let x = [1.0f32, 3.0, -2.0, 0.5];
    let cases = cases(x, &[0], &bad_logits(), &[2]);
    check_select_filter("top_k", &cases, top_k, top_k_dyn);
    // Runtime face: empty comes first, then the scratch size.
    check_select_scratch(x, &[0, 3, 5], |d, sd| top_k_dyn(d, 1, sd));
    // k ≥ V is not an error: everything stays.
    let mut s = SelectScratch::<f32, 4>::new();
    for k in [4, 5, usize::MAX] {
        let mut y = x;
        top_k(&mut y, k, &mut s).unwrap();
        assert_eq!(y, x, "k {k}");
    }
}

// ------------------------------------------------------------------ top-p

#[test]
fn audit_top_p_bad_inputs_leave_logits_alone() {
    let x = [1.0f32, 3.0, -2.0, 0.5];
    let bad = [
        -0.01f32,
        -0.0001,
        1.0001,
        2.0,
        f32::NAN,
        f32::INFINITY,
        NINF,
    ];
    let cases = cases(x, &bad, &bad_logits(), &[0.5]);
    check_select_filter("top_p", &cases, top_p, top_p_dyn);
    check_select_scratch(x, &[3], |d, sd| top_p_dyn(d, 0.5, sd));
    // The valid edges: p = 0 keeps the top token, p = 1 keeps everything.
    let mut s = SelectScratch::<f32, 4>::new();
    let mut y = x;
    top_p(&mut y, 0.0, &mut s).unwrap();
    assert_eq!(y, [NINF, 3.0, NINF, NINF]);
    let mut y = x;
    top_p(&mut y, 1.0, &mut s).unwrap();
    assert_eq!(y, x);
}

#[test]
fn audit_top_p_probs_bad_inputs_leave_weights_alone() {
    let q = [0.25f32, 0.125, 0.5, 0.125];
    let bad = [-0.5f32, 1.5, f32::NAN, f32::INFINITY];
    let cases = cases(q, &bad, &bad_weights(), &[0.5]);
    check_select_filter("top_p_probs", &cases, top_p_probs, top_p_probs_dyn);
    check_select_scratch(q, &[5], |d, sd| top_p_probs_dyn(d, 0.5, sd));
}

// ------------------------------------------------------------------ min-p

#[test]
fn audit_min_p_bad_inputs_leave_logits_alone() {
    let x = [0.0f32, -1.0, -3.0, 0.0];
    let bad = [-0.01f32, 1.01, f32::NAN, f32::INFINITY, NINF];
    let cases = cases(x, &bad, &bad_logits(), &[0.1]);
    check_filter("min_p", &cases, min_p, min_p_dyn);
    expect_err!(min_p_dyn::<f32>(&mut [], 0.1), Error::Empty { .. });
    // The valid edges: 0 keeps everything, 1 keeps the ties of the top.
    let mut y = x;
    min_p(&mut y, 0.0).unwrap();
    assert_eq!(y, x);
    let mut y = x;
    min_p(&mut y, 1.0).unwrap();
    assert_eq!(y, [0.0, NINF, NINF, 0.0]);
}

#[test]
fn audit_min_p_probs_bad_inputs_leave_weights_alone() {
    let q = [0.5f32, 0.25, 0.125, 0.125];
    let bad = [-0.5f32, 1.5, f32::NAN, NINF];
    let cases = cases(q, &bad, &bad_weights(), &[0.5]);
    check_filter("min_p_probs", &cases, min_p_probs, min_p_probs_dyn);
    expect_err!(min_p_probs_dyn::<f32>(&mut [], 0.5), Error::Empty { .. });
}

// ------------------------------------------------------------------ draw

#[test]
fn audit_sample_probs_bad_weights() {
    let rng0 = Xoshiro128PlusPlus::seed_from_u64(5);
    for (w, kind) in bad_weights() {
        let mut rng = rng0.clone();
        check_kind(sample_probs(&w, &mut rng), kind, "sample_probs");
        check_kind(sample_probs_dyn(&w[..], &mut rng), kind, "sample_probs_dyn");
        // No randomness is consumed before the weights are validated.
        assert_eq!(rng.next_u32(), rng0.clone().next_u32());
    }
    let mut rng = rng0.clone();
    expect_err!(
        sample_probs_dyn::<f32, _>(&[], &mut rng),
        Error::Empty { .. }
    );
    expect_err!(
        sample_probs_dyn::<f64, _>(&[], &mut rng),
        Error::Empty { .. }
    );
    // The valid edge: a single positive weight (even a subnormal one) is drawn.
    let tiny = [0.0f32, 0.0, f32::from_bits(1), 0.0];
    for _ in 0..20 {
        assert_eq!(sample_probs(&tiny, &mut rng), Ok(2));
    }
}

// ------------------------------------------------------------------ repro

#[test]
fn audit_repro_exp_edges_and_nan() {
    assert!(repro_exp(f32::NAN).is_nan());
    assert!(repro_exp(f64::NAN).is_nan());
    assert_eq!(repro_exp(NINF), 0.0);
    assert_eq!(repro_exp(f64::NEG_INFINITY), 0.0);
    assert_eq!(repro_exp(f32::INFINITY), f32::INFINITY);
    assert_eq!(repro_exp(f64::INFINITY), f64::INFINITY);
    assert_eq!(repro_exp(0.0f32), 1.0);
    assert_eq!(repro_exp(-0.0f64), 1.0);
    // Below the cut-off the result is flushed to 0, never subnormal; above it, +∞.
    assert_eq!(repro_exp(-87.5f32), 0.0);
    assert_eq!(repro_exp(-708.5f64), 0.0);
    assert_eq!(repro_exp(f32::MIN), 0.0);
    assert_eq!(repro_exp(88.5f32), f32::INFINITY);
    assert_eq!(repro_exp(709.5f64), f64::INFINITY);
    assert_eq!(repro_exp(f64::MAX), f64::INFINITY);
    let lo = repro_exp(-87.0f32);
    assert!(lo.is_normal() && lo > 0.0);
    let lo = repro_exp(-708.0f64);
    assert!(lo.is_normal() && lo > 0.0);
    assert!(repro_exp(88.0f32).is_finite());
    assert!(repro_exp(709.0f64).is_finite());
}

/// A generator that always returns the same word.
struct Constant(u64);

impl TryRng for Constant {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> core::result::Result<u32, Infallible> {
        Ok(self.0 as u32)
    }
    fn try_next_u64(&mut self) -> core::result::Result<u64, Infallible> {
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> core::result::Result<(), Infallible> {
        dst.fill(self.0 as u8);
        Ok(())
    }
}

#[test]
fn audit_uniform_edges() {
    // All-zero and all-one generator words: 0 and the largest value below 1.
    assert_eq!(uniform::<f32, _>(&mut Constant(0)), 0.0);
    assert_eq!(uniform::<f64, _>(&mut Constant(0)), 0.0);
    let top32: f32 = uniform(&mut Constant(u64::MAX));
    assert_eq!(top32, 1.0 - f32::EPSILON / 2.0);
    let top64: f64 = uniform(&mut Constant(u64::MAX));
    assert_eq!(top64, 1.0 - f64::EPSILON / 2.0);
    assert!(top32 < 1.0 && top64 < 1.0);
}

// ------------------------------------------------------------------ select scratch

/// A runtime scratch type `$s` of both element types: `new(0)` is empty,
/// `new($n)` has length `$n`, and a size that cannot be allocated (each of
/// `$huge`) is an error, not an abort.
macro_rules! check_scratch_sizes {
    ($s:ident, $n:expr, $huge:expr) => {{
        let e = $s::<f32>::new(0).unwrap();
        assert_eq!((e.len(), e.is_empty()), (0, true));
        let e = $s::<f64>::new(0).unwrap();
        assert_eq!((e.len(), e.is_empty()), (0, true));
        let d = $s::<f32>::new($n).unwrap();
        assert_eq!((d.len(), d.is_empty()), ($n, false));
        let d = $s::<f64>::new($n).unwrap();
        assert_eq!((d.len(), d.is_empty()), ($n, false));
        for n in $huge {
            expect_err!($s::<f32>::new(n), Error::InvalidParameter { .. });
            expect_err!($s::<f64>::new(n), Error::InvalidParameter { .. });
        }
    }};
}

#[test]
fn audit_select_scratch_sizes() {
    let s = SelectScratch::<f32, 1>::new();
    let mut one = [NINF];
    let mut s1 = s.clone();
    assert_eq!(top_k(&mut one, 1, &mut s1), Err(Error::NoCandidates));
    check_scratch_sizes!(SelectScratchDyn, 7, [usize::MAX, usize::MAX / 2]);
}

// ------------------------------------------------------------------ sampler

/// Samplers with exactly one invalid parameter each.
fn bad_samplers() -> Vec<Sampler<f32>> {
    let mut v = Vec::new();
    for t in [-0.5f32, -1e-38, f32::NAN, f32::INFINITY, NINF] {
        v.push(Sampler::new().with_temperature(t));
    }
    v.push(Sampler::new().with_top_k(0));
    for p in [-0.01f32, 1.01, f32::NAN, f32::INFINITY] {
        v.push(Sampler::new().with_top_p(p));
        v.push(Sampler::new().with_min_p(p));
    }
    // Valid stages do not hide an invalid one later in the pipeline.
    v.push(
        Sampler::new()
            .with_temperature(0.0)
            .with_top_k(2)
            .with_top_p(0.5)
            .with_min_p(-1.0),
    );
    v
}

/// A valid sampler with every stage.
fn full_sampler() -> Sampler<f32> {
    Sampler::new()
        .with_temperature(0.7)
        .with_top_k(3)
        .with_top_p(0.9)
        .with_min_p(0.05)
}

/// Calls `check` with each bad sampler on the valid logits `x` (an invalid
/// parameter), then with valid samplers on each vector of [`bad_logits`].
fn sampler_cases(x: [f32; 4], mut check: impl FnMut(&Sampler<f32>, [f32; 4], Kind)) {
    for smp in bad_samplers() {
        check(&smp, x, Kind::Invalid);
    }
    for smp in [
        Sampler::new(),
        Sampler::new().with_temperature(0.0),
        full_sampler(),
    ] {
        for (x, kind) in bad_logits() {
            check(&smp, x, kind);
        }
    }
}

#[test]
fn audit_sampler_builders_store_values_unchecked() {
    let s = Sampler::<f32>::new();
    assert_eq!(
        (s.temperature, s.top_k, s.top_p, s.min_p),
        (None, None, None, None)
    );
    assert_eq!(s, Sampler::default());
    assert_eq!(s.validate(), Ok(()));
    let b = Sampler::new()
        .with_temperature(-3.0f32)
        .with_top_k(0)
        .with_top_p(7.0)
        .with_min_p(-7.0);
    assert_eq!(b.temperature, Some(-3.0));
    assert_eq!(b.top_k, Some(0));
    assert_eq!(b.top_p, Some(7.0));
    assert_eq!(b.min_p, Some(-7.0));
    expect_err!(b.validate(), Error::InvalidParameter { .. });
    // The edges of every range are valid.
    for s in [
        Sampler::new()
            .with_temperature(0.0f32)
            .with_top_k(1)
            .with_top_p(0.0)
            .with_min_p(0.0),
        Sampler::new()
            .with_temperature(f32::MAX)
            .with_top_k(usize::MAX)
            .with_top_p(1.0)
            .with_min_p(1.0),
    ] {
        assert_eq!(s.validate(), Ok(()), "{s:?}");
    }
}

#[test]
fn audit_sampler_validate_names_each_bad_parameter() {
    let whats = |s: &Sampler<f32>| match s.validate() {
        Err(Error::InvalidParameter { what, .. }) => what,
        other => panic!("{s:?}: {other:?}"),
    };
    assert_eq!(whats(&Sampler::new().with_temperature(-1.0)), "temperature");
    assert_eq!(whats(&Sampler::new().with_top_k(0)), "top_k");
    assert_eq!(whats(&Sampler::new().with_top_p(f32::NAN)), "top_p");
    assert_eq!(whats(&Sampler::new().with_min_p(2.0)), "min_p");
    for s in bad_samplers() {
        expect_err!(s.validate(), Error::InvalidParameter { .. });
    }
    // The f64 sampler follows the same rules.
    expect_err!(
        Sampler::<f64>::new().with_top_p(-0.0001).validate(),
        Error::InvalidParameter { .. }
    );
}

#[test]
fn audit_sampler_sample_bad_inputs() {
    let x = [1.0f32, 2.5, 0.3, 2.4];
    let mut s = SamplerScratch::<f32, 4>::new();
    let mut sd = SamplerScratchDyn::<f32>::new(4).unwrap();
    let rng0 = Xoshiro128PlusPlus::seed_from_u64(11);
    sampler_cases(x, |smp, x, kind| {
        let mut rng = rng0.clone();
        check_kind(smp.sample(&x, &mut s, &mut rng), kind, "sample");
        check_kind(smp.sample_dyn(&x, &mut sd, &mut rng), kind, "sample_dyn");
        // No randomness is consumed before the inputs are validated.
        assert_eq!(rng.next_u32(), rng0.clone().next_u32(), "rng used: {smp:?}");
    });
    let full = full_sampler();
    let mut rng = rng0.clone();
    expect_err!(full.sample_dyn(&[], &mut sd, &mut rng), Error::Empty { .. });
    // An empty slice is reported before a bad parameter.
    expect_err!(
        Sampler::new()
            .with_top_k(0)
            .sample_dyn(&[], &mut sd, &mut rng),
        Error::Empty { .. }
    );
    for n in [0usize, 3, 5] {
        let mut wrong = SamplerScratchDyn::<f32>::new(n).unwrap();
        expect_err!(
            full.sample_dyn(&x, &mut wrong, &mut rng),
            Error::LengthMismatch {
                expected: 4,
                found,
                ..
            } if found == n
        );
    }
    // The returned token is always a survivor below V.
    for _ in 0..50 {
        let t = full.sample(&x, &mut s, &mut rng).unwrap();
        assert!([1, 3, 0].contains(&t));
    }
}

#[test]
fn audit_sampler_process_bad_inputs_leave_logits_alone() {
    let x = [1.0f32, 2.5, 0.3, 2.4];
    let mut s = SamplerScratch::<f32, 4>::new();
    let mut sd = SamplerScratchDyn::<f32>::new(4).unwrap();
    sampler_cases(x, |smp, x, kind| {
        let ctx = format!("process {smp:?}");
        let f = |y: &mut [f32; 4]| smp.process(y, &mut s);
        check_faces(x, kind, &ctx, f, |d| smp.process_dyn(d, &mut sd));
    });
    let full = full_sampler();
    expect_err!(full.process_dyn(&mut [], &mut sd), Error::Empty { .. });
    let mut wrong = SamplerScratchDyn::<f32>::new(2).unwrap();
    let mut d = x.to_vec();
    expect_err!(
        full.process_dyn(&mut d, &mut wrong),
        Error::LengthMismatch {
            expected: 4,
            found: 2,
            ..
        }
    );
    assert_eq!(d, x);
}

#[test]
fn audit_sampler_scratch_sizes() {
    let mut s = SamplerScratch::<f64, 1>::new();
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(3);
    assert_eq!(Sampler::new().sample(&[-5.0f64], &mut s, &mut rng), Ok(0));
    check_scratch_sizes!(SamplerScratchDyn, 9, [usize::MAX, usize::MAX / 4]);
}

// ------------------------------------------------------------------ beam search

/// A stateless model with the same next-token logits at every step, able to fail
/// or to misbehave on demand.
#[derive(Clone, Default)]
struct Canned {
    logits: Vec<f32>,
    /// Fail the n-th `step` call (0-based; the prompt's calls count).
    fail_step: Option<usize>,
    /// Fail the n-th `reorder` call (0-based).
    fail_reorder: Option<usize>,
    /// Fail the n-th `process` call (0-based).
    fail_process: Option<usize>,
    /// The processor writes this value into one entry of the log-probs.
    poke: Option<(usize, f32)>,
    /// The processor forbids every token.
    forbid_all: bool,
    steps: usize,
    reorders: usize,
    processes: usize,
}

impl Canned {
    fn new(logits: &[f32]) -> Self {
        Self {
            logits: logits.to_vec(),
            ..Self::default()
        }
    }
}

impl BeamModel<f32> for Canned {
    fn step(&mut self, _beam: usize, _token: usize, _pos: usize, logits: &mut [f32]) -> Result<()> {
        let n = self.steps;
        self.steps += 1;
        if Some(n) == self.fail_step {
            return Err(Error::Model { what: "step broke" });
        }
        logits.copy_from_slice(&self.logits);
        Ok(())
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        let n = self.reorders;
        self.reorders += 1;
        assert!(parents.iter().all(|&p| p < parents.len()));
        if Some(n) == self.fail_reorder {
            return Err(Error::Model {
                what: "reorder broke",
            });
        }
        Ok(())
    }
    fn process(&mut self, _beam: usize, _generated: &[usize], log_probs: &mut [f32]) -> Result<()> {
        let n = self.processes;
        self.processes += 1;
        if Some(n) == self.fail_process {
            return Err(Error::Model {
                what: "process broke",
            });
        }
        if let Some((i, v)) = self.poke {
            log_probs[i] = v;
        }
        if self.forbid_all {
            log_probs.fill(NINF);
        }
        Ok(())
    }
}

const GOOD: [f32; 4] = [0.0, 1.0, 0.5, -1.0];

/// The const face (both backends must agree on the outcome) with V = 4, 2 beams,
/// up to 3 new tokens.
fn beam4(model: &Canned, prompt: &[usize], cfg: &BeamConfig<'_, f32>) -> Result<usize> {
    let mut s = BeamScratch::<f32, 4, 2, 3>::new();
    let mut o = Hypotheses::<f32, 2, 3>::new();
    let a = beam_search(&mut model.clone(), prompt, cfg, &mut s, &mut o);
    let b = beam_search_with::<Scalar, _, 4, 2, 3>(&mut model.clone(), prompt, cfg, &mut s, &mut o);
    assert_eq!(a, b, "the backends disagree");
    a
}

/// The runtime face with the same shape.
fn beam4_dyn(model: &Canned, prompt: &[usize], cfg: &BeamConfig<'_, f32>) -> Result<usize> {
    let mut s = BeamScratchDyn::<f32>::new(4, 2, 3).unwrap();
    let mut o = HypothesesDyn::<f32>::new(2, 3).unwrap();
    let a = beam_search_dyn(&mut model.clone(), prompt, cfg, &mut s, &mut o);
    let b = beam_search_dyn_with::<Scalar, _>(&mut model.clone(), prompt, cfg, &mut s, &mut o);
    assert_eq!(a, b, "the backends disagree");
    a
}

#[test]
fn audit_beam_rejects_bad_config_and_prompt() {
    let m = Canned::new(&GOOD);
    // A model that fails on its first call: every rejection below happens
    // before the model is touched (otherwise the model's error would show).
    let mut broken = Canned::new(&GOOD);
    broken.fail_step = Some(0);
    let base = BeamConfig::<f32>::new(3);
    assert_eq!(beam4(&m, &[0], &base), Ok(1));
    for run in [beam4, beam4_dyn] {
        for n in [0usize, 3, usize::MAX] {
            expect_err!(
                run(&broken, &[0], &base.with_num_return(n)),
                Error::InvalidParameter {
                    what: "beam_search: num_return",
                    ..
                }
            );
        }
        // Non-finite, or so large that len^lp leaves f32 for len ≤ MAX_NEW = 3
        // (|lp| · ln 3 ≥ ln f32::MAX ≈ 88.7, i.e. |lp| ≥ 80.8).
        for lp in [f32::NAN, f32::INFINITY, NINF, 81.0, -81.0, 1e30] {
            expect_err!(
                run(&broken, &[0], &base.with_length_penalty(lp)),
                Error::InvalidParameter {
                    what: "beam_search: length_penalty",
                    ..
                }
            );
        }
        assert_eq!(run(&m, &[0], &base.with_length_penalty(80.0)), Ok(1));
        assert_eq!(
            run(&broken, &[0], &base),
            Err(Error::Model { what: "step broke" })
        );
        expect_err!(run(&broken, &[], &base), Error::Empty { .. });
        expect_err!(
            run(&broken, &[0, 4, 1], &base),
            Error::OutOfRange {
                index: 4,
                len: 4,
                ..
            }
        );
        expect_err!(
            run(&broken, &[0], &BeamConfig::new([1, 9])),
            Error::OutOfRange {
                index: 9,
                len: 4,
                ..
            }
        );
        let many = [0usize, 1, 2, usize::MAX];
        expect_err!(
            run(&broken, &[0], &BeamConfig::new(&many[..])),
            Error::OutOfRange {
                index: usize::MAX,
                ..
            }
        );
    }
    // With MAX_NEW = 1 every length is 1 and 1^lp = 1: any finite lp is accepted.
    let mut s = BeamScratch::<f32, 4, 2, 1>::new();
    let mut o = Hypotheses::<f32, 2, 1>::new();
    let cfg = BeamConfig::<f32>::new(EosIds::NONE).with_length_penalty(1e30);
    assert_eq!(
        beam_search(&mut m.clone(), &[0], &cfg, &mut s, &mut o),
        Ok(1)
    );
}

#[test]
fn audit_beam_rejects_bad_model_output() {
    let cfg = BeamConfig::<f32>::new(3).with_num_return(2);
    for run in [beam4, beam4_dyn] {
        expect_err!(
            run(&Canned::new(&[0.0, f32::NAN, 0.5, 1.0]), &[0], &cfg),
            Error::NaN { .. }
        );
        expect_err!(
            run(&Canned::new(&[0.0, f32::INFINITY, 0.5, 1.0]), &[0], &cfg),
            Error::InvalidParameter {
                what: "beam_search: model logits",
                ..
            }
        );
        assert_eq!(
            run(&Canned::new(&[NINF; 4]), &[0], &cfg),
            Err(Error::NoCandidates)
        );
        // The processor's output is checked as well.
        let mut m = Canned::new(&GOOD);
        m.poke = Some((2, f32::NAN));
        expect_err!(run(&m, &[0], &cfg), Error::NaN { .. });
        let mut m = Canned::new(&GOOD);
        m.forbid_all = true;
        assert_eq!(run(&m, &[0], &cfg), Err(Error::NoCandidates));
    }
    // A finished score that overflows f32 once length-normalised (len = 2,
    // lp = −1: −3e38 · 2 = −6e38) is an error, never −∞.
    let m = Canned::new(&[0.0, -3e38]);
    let cfg = BeamConfig::<f32>::new(EosIds::NONE)
        .with_length_penalty(-1.0)
        .with_early_stopping(EarlyStopping::Never);
    let mut s = BeamScratch::<f32, 2, 2, 2>::new();
    let mut o = Hypotheses::<f32, 2, 2>::new();
    expect_err!(
        beam_search(&mut m.clone(), &[0], &cfg, &mut s, &mut o),
        Error::InvalidParameter {
            what: "beam_search: length_penalty",
            ..
        }
    );
    let mut s = BeamScratchDyn::<f32>::new(2, 2, 2).unwrap();
    let mut o = HypothesesDyn::<f32>::new(2, 2).unwrap();
    expect_err!(
        beam_search_dyn(&mut m.clone(), &[0], &cfg, &mut s, &mut o),
        Error::InvalidParameter {
            what: "beam_search: length_penalty",
            ..
        }
    );
}

#[test]
fn audit_beam_returns_model_errors_unchanged() {
    let cfg = BeamConfig::<f32>::new(EosIds::NONE);
    let step = Err(Error::Model { what: "step broke" });
    let reorder = Err(Error::Model {
        what: "reorder broke",
    });
    let process = Err(Error::Model {
        what: "process broke",
    });
    for run in [beam4, beam4_dyn] {
        // Prompt of two tokens: steps 0 and 1 are the prompt, 2.. the generation.
        for at in [0, 1, 2, 3, 4] {
            let mut m = Canned::new(&GOOD);
            m.fail_step = Some(at);
            assert_eq!(run(&m, &[0, 1], &cfg), step, "step {at}");
        }
        // Reorder 0 copies the prompt state; 1 and 2 follow generated tokens.
        for at in [0, 1, 2] {
            let mut m = Canned::new(&GOOD);
            m.fail_reorder = Some(at);
            assert_eq!(run(&m, &[0, 1], &cfg), reorder, "reorder {at}");
        }
        for at in [0, 1, 3] {
            let mut m = Canned::new(&GOOD);
            m.fail_process = Some(at);
            assert_eq!(run(&m, &[0, 1], &cfg), process, "process {at}");
        }
        assert_eq!(run(&Canned::new(&GOOD), &[0, 1], &cfg), Ok(1));
    }
}

#[test]
fn audit_beam_dyn_rejects_bad_shapes() {
    let m = Canned::new(&GOOD);
    let cfg = BeamConfig::<f32>::new(3);
    for (v, beams, max_new) in [(0, 2, 3), (4, 0, 3), (4, 2, 0), (0, 0, 0)] {
        let mut s = BeamScratchDyn::<f32>::new(v, beams, max_new).unwrap();
        let mut o = HypothesesDyn::<f32>::new(beams, max_new).unwrap();
        expect_err!(
            beam_search_dyn(&mut m.clone(), &[0], &cfg, &mut s, &mut o),
            Error::Empty { .. }
        );
        expect_err!(
            beam_search_dyn_with::<Scalar, _>(&mut m.clone(), &[0], &cfg, &mut s, &mut o),
            Error::Empty { .. }
        );
    }
    let mut s = BeamScratchDyn::<f32>::new(4, 2, 3).unwrap();
    for (beams, max_new) in [(3, 3), (2, 4), (1, 1)] {
        let mut o = HypothesesDyn::<f32>::new(beams, max_new).unwrap();
        expect_err!(
            beam_search_dyn(&mut m.clone(), &[0], &cfg, &mut s, &mut o),
            Error::ShapeMismatch {
                expected: (2, 3),
                found,
                ..
            } if found == (beams, max_new)
        );
        expect_err!(
            beam_search_dyn_with::<Scalar, _>(&mut m.clone(), &[0], &cfg, &mut s, &mut o),
            Error::ShapeMismatch { .. }
        );
    }
    // A vocabulary of the scratch that differs from the model's logits is the
    // model's business; the scratch's V bounds the prompt and EOS ids.
    let mut s = BeamScratchDyn::<f32>::new(4, 2, 3).unwrap();
    let mut o = HypothesesDyn::<f32>::new(2, 3).unwrap();
    expect_err!(
        beam_search_dyn(&mut m.clone(), &[5], &cfg, &mut s, &mut o),
        Error::OutOfRange {
            index: 5,
            len: 4,
            ..
        }
    );
}

#[test]
fn audit_beam_dyn_buffers_reject_impossible_sizes() {
    for (v, beams, max_new) in [
        (usize::MAX, 2, 3),
        (4, usize::MAX, 3),
        (4, 2, usize::MAX),
        (usize::MAX / 2, 1, 1),
        (1, 1, usize::MAX / 2),
    ] {
        expect_err!(
            BeamScratchDyn::<f32>::new(v, beams, max_new),
            Error::InvalidParameter { .. }
        );
    }
    for (beams, max_new) in [(usize::MAX, 2), (2, usize::MAX), (1, usize::MAX / 2)] {
        expect_err!(
            HypothesesDyn::<f32>::new(beams, max_new),
            Error::InvalidParameter { .. }
        );
    }
    // Zero sizes are accepted here (the search rejects them).
    assert!(BeamScratchDyn::<f64>::new(0, 0, 0).is_ok());
    let h = HypothesesDyn::<f64>::new(0, 0).unwrap();
    assert!(h.is_empty());
}

#[test]
fn audit_beam_builders_and_accessors_edges() {
    // Builders store what they are given; the search validates.
    let c = BeamConfig::<f32>::new(EosIds::NONE);
    assert_eq!(c.length_penalty, 1.0);
    assert_eq!(c.early_stopping, EarlyStopping::Heuristic);
    assert_eq!(c.num_return, 1);
    assert!(c.eos.as_slice().is_empty());
    let c = c
        .with_length_penalty(f32::NAN)
        .with_num_return(0)
        .with_early_stopping(EarlyStopping::Never);
    assert!(c.length_penalty.is_nan());
    assert_eq!(c.num_return, 0);
    assert_eq!(c.early_stopping, EarlyStopping::Never);
    expect_err!(
        beam4(&Canned::new(&GOOD), &[0], &c),
        Error::InvalidParameter { .. }
    );
    // EosIds: any id is representable; `contains` of an absent id is false.
    let ids = vec![2usize, usize::MAX];
    let borrowed = EosIds::from(&ids);
    assert_eq!(borrowed.as_slice(), &[2, usize::MAX]);
    assert!(borrowed.contains(usize::MAX) && !borrowed.contains(0));
    let inline = EosIds::from([7usize; 8]);
    assert_eq!(inline.as_slice(), &[7; 8]);
    assert!(!EosIds::NONE.contains(0));
    assert_eq!(EosIds::from(None::<usize>), EosIds::NONE);
    assert_eq!(EosIds::from(Some(5usize)).as_slice(), &[5]);
    // Results: an index at or past `len()` gives `None`, never a panic.
    let h = Hypotheses::<f32, 2, 3>::new();
    assert_eq!(h.len(), 0);
    assert!(h.is_empty());
    assert_eq!(h.tokens(0), None);
    assert_eq!(h.score(usize::MAX), None);
    assert_eq!(h.iter().count(), 0);
    let hd = HypothesesDyn::<f32>::new(2, 3).unwrap();
    assert!(hd.is_empty());
    assert_eq!(hd.len(), 0);
    assert_eq!(hd.tokens(1), None);
    assert_eq!(hd.score(0), None);
    assert_eq!(hd.iter().count(), 0);
    // After a search: valid indices answer, the next one does not.
    let cfg = BeamConfig::<f32>::new(3).with_num_return(2);
    let mut s = BeamScratch::<f32, 4, 2, 3>::new();
    let mut o = Hypotheses::<f32, 2, 3>::new();
    let n = beam_search(&mut Canned::new(&GOOD), &[0], &cfg, &mut s, &mut o).unwrap();
    assert_eq!((n, o.len(), o.is_empty()), (2, 2, false));
    assert!(o.tokens(1).is_some() && o.score(1).is_some());
    assert_eq!((o.tokens(2), o.score(2)), (None, None));
    assert_eq!(o.iter().count(), 2);
    let mut sd = BeamScratchDyn::<f32>::new(4, 2, 3).unwrap();
    let mut od = HypothesesDyn::<f32>::new(2, 3).unwrap();
    let n = beam_search_dyn(&mut Canned::new(&GOOD), &[0], &cfg, &mut sd, &mut od).unwrap();
    assert_eq!((n, od.len(), od.is_empty()), (2, 2, false));
    assert_eq!(od.tokens(0), o.tokens(0));
    assert_eq!((od.tokens(2), od.score(usize::MAX)), (None, None));
    assert_eq!(od.iter().count(), 2);
}

/// Finding (this audit): a processor's `+∞` used to pass (only NaN was
/// checked) and the search returned hypotheses scored `+∞`; it is now
/// `InvalidParameter`, like the model's own `+∞` logits.
#[test]
fn audit_beam_processor_infinity_is_an_error() {
    let mut m = Canned::new(&GOOD);
    m.poke = Some((1, f32::INFINITY));
    let cfg = BeamConfig::<f32>::new(3).with_num_return(2);
    let mut s = BeamScratch::<f32, 4, 2, 3>::new();
    let mut o = Hypotheses::<f32, 2, 3>::new();
    assert!(matches!(
        beam_search(&mut m, &[0], &cfg, &mut s, &mut o),
        Err(Error::InvalidParameter { .. })
    ));
}

/// Vocabularies longer than one vector: the bad entry sits in the vector body,
/// not only in the scalar tail.
#[test]
fn audit_long_vocabularies_report_bad_entries() {
    const N: usize = 300;
    let mut sel = SelectScratchDyn::<f32>::new(N).unwrap();
    let mut smp = SamplerScratchDyn::<f32>::new(N).unwrap();
    let full = Sampler::new()
        .with_temperature(0.9f32)
        .with_top_k(5)
        .with_top_p(0.8)
        .with_min_p(0.01);
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(1);
    for at in [0usize, 17, 37, 255, 256, N - 1] {
        let base: Vec<f32> = (0..N).map(|i| (i % 13) as f32 * 0.25).collect();
        for (bad, kind) in [(f32::NAN, Kind::NaN), (f32::INFINITY, Kind::Invalid)] {
            let mut x = base.clone();
            x[at] = bad;
            let mut y = x.clone();
            check_kind(temperature_dyn(&mut y, 0.5), kind, "temperature_dyn");
            check_kind(top_k_dyn(&mut y, 3, &mut sel), kind, "top_k_dyn");
            check_kind(top_p_dyn(&mut y, 0.5, &mut sel), kind, "top_p_dyn");
            check_kind(min_p_dyn(&mut y, 0.5), kind, "min_p_dyn");
            check_kind(full.process_dyn(&mut y, &mut smp), kind, "process_dyn");
            check_kind(full.sample_dyn(&x, &mut smp, &mut rng), kind, "sample_dyn");
            assert_eq!(bits(&y), bits(&x), "untouched, bad entry at {at}");
        }
        for (bad, kind) in [
            (f32::NAN, Kind::NaN),
            (f32::INFINITY, Kind::Invalid),
            (-1e-30, Kind::Invalid),
        ] {
            let mut q: Vec<f32> = base.clone();
            q[at] = bad;
            let mut y = q.clone();
            check_kind(top_p_probs_dyn(&mut y, 0.5, &mut sel), kind, "top_p_probs");
            check_kind(min_p_probs_dyn(&mut y, 0.5), kind, "min_p_probs");
            check_kind(sample_probs_dyn(&q, &mut rng), kind, "sample_probs");
            assert_eq!(bits(&y), bits(&q), "untouched, bad weight at {at}");
        }
    }
    let dead = vec![NINF; N];
    let mut y = dead.clone();
    assert_eq!(greedy_dyn(&dead), Err(Error::NoCandidates));
    assert_eq!(temperature_dyn(&mut y, 2.0), Err(Error::NoCandidates));
    assert_eq!(top_k_dyn(&mut y, 3, &mut sel), Err(Error::NoCandidates));
    assert_eq!(top_p_dyn(&mut y, 0.5, &mut sel), Err(Error::NoCandidates));
    assert_eq!(min_p_dyn(&mut y, 0.5), Err(Error::NoCandidates));
    assert_eq!(full.process_dyn(&mut y, &mut smp), Err(Error::NoCandidates));
    assert_eq!(
        full.sample_dyn(&dead, &mut smp, &mut rng),
        Err(Error::NoCandidates)
    );
    assert_eq!(bits(&y), bits(&dead));
    let zero = vec![0.0f32; N];
    let mut y = zero.clone();
    assert_eq!(
        top_p_probs_dyn(&mut y, 0.5, &mut sel),
        Err(Error::NoCandidates)
    );
    assert_eq!(min_p_probs_dyn(&mut y, 0.5), Err(Error::NoCandidates));
    assert_eq!(sample_probs_dyn(&zero, &mut rng), Err(Error::NoCandidates));
}
