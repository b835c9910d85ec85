//! The GPT-2 decoder against Hugging Face transformers
//! (tests/reference/gen_gpt2.py → tests/reference/gpt2.bin): a tiny
//! `GPT2LMHeadModel` with its `Conv1D (in, out)` weights converted at load —
//! full-forward and cached logits, greedy `generate`, beam search
//! (`generate(num_beams=4)`, two configurations); a ring cache against a
//! recomputation with the same sliding window; the const face; bad input.

mod common;

use common::{RefFile, assert_close, entry, to_vec};
use constml::attention::CachePolicy;
use constml::decode::{BeamConfig, BeamScratchDyn, EarlyStopping, HypothesesDyn, beam_search_dyn};
use constml::models::{
    Gpt2, Gpt2Beams, Gpt2Config, Gpt2Sized, Gpt2State, Gpt2Weights, LogitRows, conv1d_to_linear,
};
use constml::{Error, Real, Scalar, Simd};

static BIN: &[u8] = include_bytes!("reference/gpt2.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("gpt2.bin is a CMLREF01 file")
}

fn ints(name: &str) -> Vec<usize> {
    let e = entry(&file(), name);
    (0..e.len()).map(|i| e.get_i64(i) as usize).collect()
}

fn config() -> Gpt2Config {
    let c = ints("gpt2/config");
    Gpt2Config::new(c[0], c[1], c[2], c[3], c[4])
}

/// constml's flat weight buffer from the Hugging Face state dict:
/// `Conv1D` weights transposed from `(in, out)` to `(out, in)`.
fn weights<T: Real>() -> Vec<T> {
    let cfg = config();
    let e = cfg.n_embd;
    let w =
        |name: &str| -> Vec<T> { to_vec(&entry(&file(), &format!("gpt2/w/transformer.{name}"))) };
    let conv = |name: &str, inputs: usize, outputs: usize| -> Vec<T> {
        let src = w(name);
        let mut dst = vec![T::ZERO; src.len()];
        conv1d_to_linear(&src, inputs, outputs, &mut dst).unwrap();
        dst
    };
    let layers = |f: &dyn Fn(usize) -> Vec<T>| -> Vec<T> { (0..cfg.n_layer).flat_map(f).collect() };
    let mut out = Vec::new();
    out.extend(w("wte.weight"));
    out.extend(w("wpe.weight"));
    out.extend(layers(&|l| w(&format!("h.{l}.ln_1.weight"))));
    out.extend(layers(&|l| w(&format!("h.{l}.ln_1.bias"))));
    out.extend(layers(&|l| {
        conv(&format!("h.{l}.attn.c_attn.weight"), e, 3 * e)
    }));
    out.extend(layers(&|l| w(&format!("h.{l}.attn.c_attn.bias"))));
    out.extend(layers(&|l| {
        conv(&format!("h.{l}.attn.c_proj.weight"), e, e)
    }));
    out.extend(layers(&|l| w(&format!("h.{l}.attn.c_proj.bias"))));
    out.extend(layers(&|l| w(&format!("h.{l}.ln_2.weight"))));
    out.extend(layers(&|l| w(&format!("h.{l}.ln_2.bias"))));
    out.extend(layers(&|l| {
        conv(&format!("h.{l}.mlp.c_fc.weight"), e, 4 * e)
    }));
    out.extend(layers(&|l| w(&format!("h.{l}.mlp.c_fc.bias"))));
    out.extend(layers(&|l| {
        conv(&format!("h.{l}.mlp.c_proj.weight"), 4 * e, e)
    }));
    out.extend(layers(&|l| w(&format!("h.{l}.mlp.c_proj.bias"))));
    out.extend(w("ln_f.weight"));
    out.extend(w("ln_f.bias"));
    assert_eq!(out.len(), cfg.weights_len());
    out
}

fn state<'s, T: Real>(cfg: &Gpt2Config, chunk: usize, arena: &'s mut Vec<T>) -> Gpt2State<'s, T> {
    arena.resize(cfg.state_len(chunk, cfg.n_positions), T::ZERO);
    Gpt2State::new(cfg, chunk, cfg.n_positions, CachePolicy::Bounded, arena).unwrap()
}

#[test]
fn logits_match_hugging_face() {
    let cfg = config();
    let prompt = ints("gpt2/prompt");
    let v = cfg.vocab_size;
    let w = weights::<f32>();
    let want: Vec<f32> = to_vec(&entry(&file(), "gpt2/logits"));
    let cached: Vec<f32> = to_vec(&entry(&file(), "gpt2/cached_logits"));
    for simd in [true, false] {
        let run = |rows: LogitRows, chunked: bool| -> Vec<f32> {
            let mut arena = Vec::new();
            let mut st = state(&cfg, prompt.len(), &mut arena);
            let ww = Gpt2Weights::from_flat(&cfg, &w).unwrap();
            let mut out = Vec::new();
            let go = |toks: &[usize], st: &mut Gpt2State<'_, f32>| {
                if simd {
                    Gpt2::<f32, Simd>::new(cfg, ww)
                        .unwrap()
                        .forward(toks, st, rows)
                        .unwrap();
                } else {
                    Gpt2::<f32, Scalar>::new(cfg, ww)
                        .unwrap()
                        .forward(toks, st, rows)
                        .unwrap();
                }
            };
            if chunked {
                go(&prompt, &mut st);
                out.extend_from_slice(st.logits());
            } else {
                for &t in &prompt {
                    go(&[t], &mut st);
                    out.extend_from_slice(st.logits());
                }
            }
            out
        };
        assert_close("full forward", &run(LogitRows::All, true), &want, 0.0, 1e-4);
        assert_close(
            "cached steps",
            &run(LogitRows::Last, false),
            &cached,
            0.0,
            1e-4,
        );
        let last = run(LogitRows::Last, true);
        assert_close(
            "last row",
            &last,
            &want[(prompt.len() - 1) * v..],
            0.0,
            1e-4,
        );
    }
    // f64 against Hugging Face in float64.
    let w64 = weights::<f64>();
    let m = Gpt2::<f64>::new(cfg, Gpt2Weights::from_flat(&cfg, &w64).unwrap()).unwrap();
    let mut arena = Vec::new();
    let mut st = state(&cfg, prompt.len(), &mut arena);
    m.forward(&prompt, &mut st, LogitRows::All).unwrap();
    let want64: Vec<f64> = to_vec(&entry(&file(), "gpt2/logits_f64"));
    assert_close("f64", st.logits(), &want64, 1e-9, 1e-9);
}

#[test]
fn greedy_matches_generate() {
    let cfg = config();
    let w = weights::<f32>();
    let m = Gpt2::<f32>::new(cfg, Gpt2Weights::from_flat(&cfg, &w).unwrap()).unwrap();
    let want = ints("gpt2/greedy/sequence");
    let prompt = ints("gpt2/beam/prompt");
    let mut arena = Vec::new();
    let mut st = state(&cfg, prompt.len(), &mut arena);
    let mut seq = prompt.clone();
    m.forward(&prompt, &mut st, LogitRows::Last).unwrap();
    let eos = ints("gpt2/config")[6];
    while seq.len() < want.len() {
        let next = constml::decode::greedy_dyn(st.logits()).unwrap();
        seq.push(next);
        if next == eos {
            break;
        }
        m.forward(&[next], &mut st, LogitRows::Last).unwrap();
    }
    // Hugging Face pads a finished sequence with pad = eos.
    while seq.len() < want.len() {
        seq.push(eos);
    }
    assert_eq!(seq, want);
}

fn beam_case(case: &str, length_penalty: f32, early: EarlyStopping) {
    let cfg = config();
    let w = weights::<f32>();
    let m = Gpt2::<f32>::new(cfg, Gpt2Weights::from_flat(&cfg, &w).unwrap()).unwrap();
    let prompt = ints(&format!("gpt2/{case}/prompt"));
    let seqs = entry(&file(), &format!("gpt2/{case}/sequences"));
    let width = seqs.dims()[1];
    let want_scores: Vec<f32> = to_vec(&entry(&file(), &format!("gpt2/{case}/scores")));
    let lengths = ints(&format!("gpt2/{case}/lengths"));
    let eos = ints("gpt2/config")[6];
    // generate(max_new_tokens=12); the stored rows are only as wide as the
    // longest returned hypothesis.
    let max_new = 12;
    assert!(width <= prompt.len() + max_new);
    let beams = 4;
    let mut arenas: Vec<Vec<f32>> = (0..2 * beams)
        .map(|_| vec![0.0f32; cfg.state_len(1, cfg.n_positions)])
        .collect();
    let mut all: Vec<Gpt2State<'_, f32>> = arenas
        .iter_mut()
        .map(|a| Gpt2State::new(&cfg, 1, cfg.n_positions, CachePolicy::Bounded, a).unwrap())
        .collect();
    let (states, spares) = all.split_at_mut(beams);
    let mut model = Gpt2Beams::new(&m, states, spares).unwrap();
    let bc = BeamConfig::new(eos)
        .with_length_penalty(length_penalty)
        .with_early_stopping(early)
        .with_num_return(beams);
    let mut scratch = BeamScratchDyn::new(cfg.vocab_size, beams, max_new).unwrap();
    let mut out = HypothesesDyn::new(beams, max_new).unwrap();
    beam_search_dyn(&mut model, &prompt, &bc, &mut scratch, &mut out).unwrap();
    assert_eq!(out.len(), beams);
    for i in 0..beams {
        let got = out.tokens(i).unwrap();
        let row: Vec<usize> = (0..width)
            .map(|j| seqs.get_i64(i * width + j) as usize)
            .collect();
        assert_eq!(
            prompt.len() + got.len(),
            lengths[i],
            "{case} hypothesis {i} length"
        );
        assert_eq!(&row[prompt.len()..lengths[i]], got, "{case} hypothesis {i}");
        let s = out.score(i).unwrap();
        assert!(
            (s - want_scores[i]).abs() <= 1e-4,
            "{case} score {i}: {s} vs {}",
            want_scores[i]
        );
    }
}

#[test]
fn beam_search_matches_generate() {
    beam_case("beam", 1.0, EarlyStopping::Heuristic);
    beam_case("beam2", 0.5, EarlyStopping::Eager);
}

#[test]
fn ring_cache_matches_a_windowed_recomputation() {
    let cfg = config();
    let w = weights::<f64>();
    let m = Gpt2::<f64>::new(cfg, Gpt2Weights::from_flat(&cfg, &w).unwrap()).unwrap();
    let toks: Vec<usize> = (0..30).map(|i| (i * 11 + 3) % cfg.vocab_size).collect();
    let cap = 7;
    let mut a1 = vec![0.0f64; cfg.state_len(1, cap)];
    let mut ring = Gpt2State::new(&cfg, 1, cap, CachePolicy::Ring, &mut a1).unwrap();
    let mut a2 = vec![0.0f64; cfg.state_len(toks.len(), cap)];
    for (t, &tok) in toks.iter().enumerate() {
        m.forward(&[tok], &mut ring, LogitRows::Last).unwrap();
        // The whole prefix as one chunk into an empty ring: each query sees
        // exactly its window of `cap` keys, held or pending.
        let mut fresh = Gpt2State::new(&cfg, toks.len(), cap, CachePolicy::Ring, &mut a2).unwrap();
        m.forward(&toks[..=t], &mut fresh, LogitRows::Last).unwrap();
        assert_close(
            &format!("ring step {t}"),
            ring.logits(),
            fresh.logits(),
            1e-12,
            1e-12,
        );
    }
    // The window does matter: a bounded cache differs once positions pass it.
    let mut a3 = vec![0.0f64; cfg.state_len(toks.len(), cfg.n_positions)];
    let mut full = Gpt2State::new(
        &cfg,
        toks.len(),
        cfg.n_positions,
        CachePolicy::Bounded,
        &mut a3,
    )
    .unwrap();
    m.forward(&toks, &mut full, LogitRows::Last).unwrap();
    let differ = full
        .logits()
        .iter()
        .zip(ring.logits())
        .any(|(a, b)| (a - b).abs() > 1e-6);
    assert!(differ);
}

#[test]
fn const_face_matches() {
    type Tiny = Gpt2Sized<'static, f32, 64, 40, 32, 4, 2>;
    assert_eq!(Tiny::CONFIG, config());
    let w: &'static [f32] = Box::leak(weights::<f32>().into_boxed_slice());
    let m = Tiny::new(Gpt2Weights::from_flat(&Tiny::CONFIG, w).unwrap()).unwrap();
    let mut arena = vec![0.0f32; Tiny::STATE_LEN];
    let mut st = m.state(&mut arena).unwrap();
    let prompt = ints("gpt2/prompt");
    let cached: Vec<f32> = to_vec(&entry(&file(), "gpt2/cached_logits"));
    for (t, &tok) in prompt.iter().enumerate() {
        m.forward(&[tok], &mut st, LogitRows::Last).unwrap();
        let v = Tiny::CONFIG.vocab_size;
        assert_close(
            "const face",
            st.logits(),
            &cached[t * v..(t + 1) * v],
            0.0,
            1e-4,
        );
    }
}

#[test]
fn bad_input_is_an_error() {
    let cfg = config();
    let w = weights::<f32>();
    let m = Gpt2::<f32>::new(cfg, Gpt2Weights::from_flat(&cfg, &w).unwrap()).unwrap();
    // Weights of the wrong length, a configuration that cannot work.
    assert!(Gpt2Weights::from_flat(&cfg, &w[1..]).is_err());
    assert!(Gpt2Config::new(64, 40, 30, 2, 4).check().is_err());
    assert!(Gpt2Config { eps: 0.0, ..cfg }.check().is_err());
    let other = Gpt2Config::new(64, 40, 32, 1, 4);
    assert!(Gpt2::<f32>::new(other, Gpt2Weights::from_flat(&cfg, &w).unwrap()).is_err());
    // Positions past the learned table, even in a ring cache.
    let mut a = vec![0.0f32; cfg.state_len(1, 5)];
    let mut ring = Gpt2State::new(&cfg, 1, 5, CachePolicy::Ring, &mut a).unwrap();
    for _ in 0..cfg.n_positions {
        m.forward(&[7], &mut ring, LogitRows::Last).unwrap();
    }
    assert!(matches!(
        m.forward(&[7], &mut ring, LogitRows::Last),
        Err(Error::OutOfRange { .. })
    ));
    assert_eq!(ring.position(), cfg.n_positions);
    // A full bounded cache; a prompt longer than the context; bad token ids.
    let mut b = vec![0.0f32; cfg.state_len(4, 6)];
    let mut small = Gpt2State::new(&cfg, 4, 6, CachePolicy::Bounded, &mut b).unwrap();
    m.forward(&[1, 2, 3, 4], &mut small, LogitRows::Last)
        .unwrap();
    assert!(matches!(
        m.forward(&[1, 2, 3], &mut small, LogitRows::Last),
        Err(Error::CacheFull { .. })
    ));
    assert!(m.forward(&[64], &mut small, LogitRows::Last).is_err());
    assert!(m.forward(&[1; 5], &mut small, LogitRows::Last).is_err());
    assert!(m.forward(&[], &mut small, LogitRows::Last).is_err());
    assert_eq!(small.position(), 4);
    // States: a bounded capacity past the context, zero sizes, a short arena.
    let mut c = vec![0.0f32; cfg.state_len(1, 41)];
    assert!(Gpt2State::new(&cfg, 1, 41, CachePolicy::Bounded, &mut c).is_err());
    assert!(Gpt2State::new(&cfg, 0, 4, CachePolicy::Bounded, &mut c).is_err());
    assert!(Gpt2State::new(&cfg, 1, 4, CachePolicy::Bounded, &mut c[..10]).is_err());
    // Beam states of mixed shapes are refused up front; a logits buffer of
    // the wrong length is an error before the beam's state moves.
    {
        use constml::decode::BeamModel;
        let mut arenas: Vec<Vec<f32>> = (0..4).map(|_| vec![0.0f32; cfg.state_len(1, 8)]).collect();
        let mut it = arenas.iter_mut();
        let mut st: Vec<Gpt2State<'_, f32>> = vec![
            Gpt2State::new(&cfg, 1, 8, CachePolicy::Bounded, it.next().unwrap()).unwrap(),
            Gpt2State::new(&cfg, 1, 8, CachePolicy::Ring, it.next().unwrap()).unwrap(),
        ];
        let mut sp: Vec<Gpt2State<'_, f32>> = vec![
            Gpt2State::new(&cfg, 1, 8, CachePolicy::Bounded, it.next().unwrap()).unwrap(),
            Gpt2State::new(&cfg, 1, 8, CachePolicy::Bounded, it.next().unwrap()).unwrap(),
        ];
        assert!(Gpt2Beams::new(&m, &mut st, &mut sp).is_err());
        let one = &mut st[..1];
        let mut beams = Gpt2Beams::new(&m, one, &mut sp[..1]).unwrap();
        assert!(beams.step(0, 3, 0, &mut [0.0; 5]).is_err());
        let mut logits = vec![0.0f32; cfg.vocab_size];
        beams.step(0, 3, 0, &mut logits).unwrap();
        assert!(beams.step(0, 3, 5, &mut logits).is_err(), "out of order");
        assert!(beams.reorder(&[1]).is_err());
    }
    // Conv1D conversion with mismatched lengths.
    assert!(conv1d_to_linear(&[0.0f32; 6], 2, 4, &mut [0.0; 6]).is_err());
}
