//! The Llama decoder, llama2.c's checkpoint format and tokenizer against
//! their references (tests/reference/gen_llama.py → tests/reference/llama.bin
//! and the fixture files in tests/reference/llama/): Hugging Face
//! `LlamaForCausalLM` logits on the same weights, llama2.c's own `run` at
//! temperature 0 (tokens and printed text), llama2.c's `encode`/`decode` on
//! tricky strings; cached ≡ chunked decoding, Scalar ≡ Simd, bad input.

mod common;

use common::{RefFile, assert_close, entry};
use constml::models::{
    Llama, Llama2cCheckpoint, LlamaConfig, LlamaState, LlamaWeights, LogitRows, Tokenizer,
    llama2c_config, printable,
};
use constml::{Backend, Error, Scalar, Simd};

static BIN: &[u8] = include_bytes!("reference/llama.bin");
static SHARED: &[u8] = include_bytes!("reference/llama/tiny_shared.bin");
static GQA: &[u8] = include_bytes!("reference/llama/tiny_gqa.bin");
static TOKENIZER: &[u8] = include_bytes!("reference/llama/tokenizer.bin");

fn file() -> RefFile<'static> {
    RefFile::parse(BIN).expect("llama.bin is a CMLREF01 file")
}

fn ints(name: &str) -> Vec<usize> {
    let e = entry(&file(), name);
    (0..e.len()).map(|i| e.get_i64(i) as usize).collect()
}

fn bytes(name: &str) -> Vec<u8> {
    entry(&file(), name).data.to_vec()
}

fn fixtures() -> [(&'static str, &'static [u8]); 2] {
    [("tiny_shared", SHARED), ("tiny_gqa", GQA)]
}

fn tokenizer() -> Tokenizer {
    Tokenizer::from_bytes(TOKENIZER, 423).expect("the fixture tokenizer parses")
}

#[test]
fn checkpoints_parse_as_their_headers_say() {
    for (name, data) in fixtures() {
        let ckpt = Llama2cCheckpoint::from_bytes(data).unwrap();
        let c = ints(&format!("llama/{name}/config"));
        let cfg = ckpt.config();
        assert_eq!(
            [
                cfg.dim,
                cfg.hidden_dim,
                cfg.n_layers,
                cfg.n_heads,
                cfg.n_kv_heads,
                cfg.vocab_size,
                cfg.seq_len,
                usize::from(cfg.shared_classifier)
            ],
            c[..8],
            "{name}"
        );
        let w = ckpt.weights().unwrap();
        // The views point into the one buffer: no copies.
        let base = ckpt.floats().as_ptr_range();
        assert!(base.contains(&w.w3.as_ptr()) && base.contains(&w.wcls.as_ptr()));
        assert_eq!(
            w.wcls.as_ptr() == w.token_embedding.as_ptr(),
            cfg.shared_classifier
        );
    }
}

fn logits_case<B: Backend>(name: &str, data: &[u8]) {
    let ckpt = Llama2cCheckpoint::from_bytes(data).unwrap();
    let cfg = *ckpt.config();
    let m = Llama::<f32, B>::new(cfg, ckpt.weights().unwrap()).unwrap();
    let ids = ints(&format!("llama/{name}/prompt_ids"));
    let want = common::to_vec::<f32>(&entry(&file(), &format!("llama/{name}/hf_logits")));
    let v = cfg.vocab_size;
    // One chunk, every row's logits.
    let mut arena = vec![0.0f32; cfg.state_len(ids.len())];
    let mut st = LlamaState::new(&cfg, ids.len(), &mut arena).unwrap();
    m.forward(&ids, &mut st, LogitRows::All).unwrap();
    assert_close(
        &format!("{name} {} chunk", B::NAME),
        st.logits(),
        &want,
        0.0,
        1e-4,
    );
    // One token at a time from the cache.
    st.reset();
    for (t, &id) in ids.iter().enumerate() {
        m.forward(&[id], &mut st, LogitRows::Last).unwrap();
        assert_eq!(st.position(), t + 1);
        assert_close(
            &format!("{name} {} step {t}", B::NAME),
            st.logits(),
            &want[t * v..(t + 1) * v],
            0.0,
            1e-4,
        );
    }
    // Chunks of three, then the rest.
    st.reset();
    m.forward(&ids[..3], &mut st, LogitRows::Last).unwrap();
    m.forward(&ids[3..], &mut st, LogitRows::All).unwrap();
    assert_close("chunked", st.logits(), &want[3 * v..], 0.0, 1e-4);
}

#[test]
fn logits_match_hugging_face_llama() {
    for (name, data) in fixtures() {
        logits_case::<Simd>(name, data);
        logits_case::<Scalar>(name, data);
    }
}

/// llama2.c's `run` at temperature 0: the same token sequence and the same
/// printed text.
fn greedy_runs<B: Backend>() {
    let tok = tokenizer();
    for (name, data) in fixtures() {
        let ckpt = Llama2cCheckpoint::from_bytes(data).unwrap();
        let cfg = *ckpt.config();
        let m = Llama::<f32, B>::new(cfg, ckpt.weights().unwrap()).unwrap();
        for j in 0..3 {
            let pre = format!("llama/{name}/run{j}");
            let prompt = String::from_utf8(bytes(&format!("{pre}/prompt"))).unwrap();
            let info = ints(&format!("{pre}/info"));
            let want = ints(&format!("{pre}/tokens"));
            let ids = tok.encode(&prompt, true, false).unwrap();
            assert_eq!(ids.len(), info[1], "{pre}: prompt tokens");
            assert_eq!(ids[..], want[..ids.len()], "{pre}: prompt ids");
            let mut arena = vec![0.0f32; cfg.state_len(8)];
            let mut st = LlamaState::new(&cfg, 8, &mut arena).unwrap();
            let mut seq = vec![ids[0]];
            let mut text = Vec::new();
            m.generate(
                &ids,
                info[0],
                &mut st,
                constml::decode::greedy_dyn,
                |prev, next| {
                    seq.push(next);
                    if let Some(p) = printable(tok.decode(prev, next)?) {
                        text.extend_from_slice(p);
                    }
                    Ok(())
                },
            )
            .unwrap();
            text.push(b'\n');
            assert_eq!(seq, want, "{pre} ({})", B::NAME);
            assert_eq!(text, bytes(&format!("{pre}/stdout")), "{pre} stdout");
        }
    }
}

#[test]
fn greedy_generation_matches_llama2c_run() {
    greedy_runs::<Simd>();
    greedy_runs::<Scalar>();
}

#[test]
fn tokenizer_matches_llama2c() {
    let tok = tokenizer();
    let cases = entry(&file(), "tok/cases").text();
    let strings: Vec<&str> = cases.split('\u{1f}').collect();
    assert_eq!(strings.len(), 13);
    for (k, s) in strings.iter().enumerate() {
        assert_eq!(
            tok.encode(s, true, false).unwrap(),
            ints(&format!("tok/{k}/bos")),
            "{s:?}"
        );
        assert_eq!(
            tok.encode(s, false, false).unwrap(),
            ints(&format!("tok/{k}/nobos")),
            "{s:?}"
        );
        let mut eos = tok.encode(s, false, true).unwrap();
        assert_eq!(eos.pop(), Some(2));
        // Decoding after BOS gives back llama2.c's raw bytes.
        let ids = ints(&format!("tok/{k}/bos"));
        let mut out = Vec::new();
        for w in ids.windows(2) {
            out.extend_from_slice(tok.decode(w[0], w[1]).unwrap());
        }
        assert_eq!(out, bytes(&format!("tok/{k}/decoded")), "{s:?}");
    }
    assert!(tok.encode_bytes(b"ok \xff", true, false).is_err());
    assert!(tok.decode(1, 423).is_err());
    assert_eq!(printable(b"\x01"), None);
    assert_eq!(printable(b""), None);
    assert_eq!(printable(b"\t"), Some(&b"\t"[..]));
    assert_eq!(printable(b"\xc3\xa9"), Some(&b"\xc3\xa9"[..]));
}

#[test]
fn simd_matches_scalar() {
    let ckpt = Llama2cCheckpoint::from_bytes(GQA).unwrap();
    let cfg = *ckpt.config();
    let w = ckpt.weights().unwrap();
    let ids: Vec<usize> = (0..20).map(|i| (i * 37 + 5) % cfg.vocab_size).collect();
    let run = |simd: bool| -> Vec<f32> {
        let mut arena = vec![0.0f32; cfg.state_len(20)];
        let mut st = LlamaState::new(&cfg, 20, &mut arena).unwrap();
        if simd {
            Llama::<f32, Simd>::new(cfg, w)
                .unwrap()
                .forward(&ids, &mut st, LogitRows::All)
                .unwrap();
        } else {
            Llama::<f32, Scalar>::new(cfg, w)
                .unwrap()
                .forward(&ids, &mut st, LogitRows::All)
                .unwrap();
        }
        st.logits().to_vec()
    };
    assert_close("simd vs scalar", &run(true), &run(false), 1e-4, 1e-4);
}

#[test]
fn f64_weights_run_too() {
    let ckpt = Llama2cCheckpoint::from_bytes(SHARED).unwrap();
    let cfg = *ckpt.config();
    let w64: Vec<f64> = {
        let w = ckpt.weights().unwrap();
        [
            w.token_embedding,
            w.rms_att,
            w.wq,
            w.wk,
            w.wv,
            w.wo,
            w.rms_ffn,
            w.w1,
            w.w2,
            w.w3,
            w.rms_final,
        ]
        .iter()
        .flat_map(|t| t.iter().map(|&v| f64::from(v)))
        .collect()
    };
    let m = Llama::<f64>::new(cfg, LlamaWeights::from_flat(&cfg, &w64).unwrap()).unwrap();
    let ids = ints("llama/tiny_shared/prompt_ids");
    let mut arena = vec![0.0f64; cfg.state_len(ids.len())];
    let mut st = LlamaState::new(&cfg, ids.len(), &mut arena).unwrap();
    m.forward(&ids, &mut st, LogitRows::All).unwrap();
    let want = common::to_vec::<f64>(&entry(&file(), "llama/tiny_shared/hf_logits"));
    assert_close("f64", st.logits(), &want, 0.0, 1e-4);
}

#[test]
fn bad_checkpoints_and_inputs_are_errors() {
    // Truncated, extended, header-only, too short for a header.
    assert!(Llama2cCheckpoint::from_bytes(&SHARED[..SHARED.len() - 4]).is_err());
    let mut longer = SHARED.to_vec();
    longer.extend_from_slice(&[0; 4]);
    assert!(Llama2cCheckpoint::from_bytes(&longer).is_err());
    assert!(Llama2cCheckpoint::from_bytes(&SHARED[..28]).is_err());
    assert!(Llama2cCheckpoint::from_bytes(&SHARED[..27]).is_err());
    // Negative, zero, inconsistent or absurd header values: an error before
    // any allocation sized by them.
    let header = |v: [i32; 7]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    for h in [
        [32, 64, 2, 4, 4, 423, -1],
        [32, 64, 0, 4, 4, 423, 64],
        [32, 64, 2, 5, 5, 423, 64],
        [32, 64, 2, 4, 3, 423, 64],
        [30, 64, 2, 4, 4, 423, 64],
        [i32::MAX, i32::MAX, i32::MAX, 1, 1, i32::MAX, i32::MAX],
        [32, 64, 2, 4, 4, i32::MIN, 64],
    ] {
        let mut b = header(h);
        b.extend_from_slice(&SHARED[28..]);
        assert!(
            matches!(Llama2cCheckpoint::from_bytes(&b), Err(Error::Format { .. })),
            "{h:?}"
        );
    }
    assert!(Llama2cCheckpoint::read("/nonexistent/model.bin").is_err());
    // A header whose sizes disagree with a configuration given elsewhere.
    let cfg = llama2c_config(SHARED).unwrap();
    let other = LlamaConfig { dim: 64, ..cfg };
    let ckpt = Llama2cCheckpoint::from_bytes(SHARED).unwrap();
    assert!(Llama::<f32>::new(other, ckpt.weights().unwrap()).is_err());
    // Tokenizer: truncated, a vocabulary larger than the file, negative lengths.
    assert!(Tokenizer::from_bytes(&TOKENIZER[..TOKENIZER.len() - 1], 423).is_err());
    assert!(Tokenizer::from_bytes(TOKENIZER, 1 << 40).is_err());
    assert!(Tokenizer::from_bytes(&TOKENIZER[..3], 1).is_err());
    let mut neg = TOKENIZER.to_vec();
    neg[8..12].copy_from_slice(&(-5i32).to_le_bytes());
    assert!(Tokenizer::from_bytes(&neg, 423).is_err());
    // Forward: a token outside the vocabulary, a chunk larger than the
    // state, positions past the context — all leave the state unchanged.
    let m = Llama::<f32>::new(cfg, ckpt.weights().unwrap()).unwrap();
    let mut arena = vec![0.0f32; cfg.state_len(4)];
    let mut st = LlamaState::new(&cfg, 4, &mut arena).unwrap();
    m.forward(&[1, 5], &mut st, LogitRows::Last).unwrap();
    assert!(m.forward(&[423], &mut st, LogitRows::Last).is_err());
    assert!(m.forward(&[1; 5], &mut st, LogitRows::Last).is_err());
    assert!(m.forward(&[], &mut st, LogitRows::Last).is_err());
    assert_eq!(st.position(), 2);
    for _ in 2..cfg.seq_len {
        m.forward(&[7], &mut st, LogitRows::Last).unwrap();
    }
    assert!(matches!(
        m.forward(&[7], &mut st, LogitRows::Last),
        Err(Error::CacheFull { .. })
    ));
    // A prompt longer than the context is refused by generation's forward.
    st.reset();
    let long = vec![5usize; cfg.seq_len + 1];
    let r = m.generate(&long, cfg.seq_len + 1, &mut st, |_| Ok(3), |_, _| Ok(()));
    assert!(r.is_ok(), "steps clamp to the context: {r:?}");
    assert!(
        m.generate(&[], 4, &mut st, |_| Ok(3), |_, _| Ok(()))
            .is_err()
    );
    assert!(
        m.generate(&[1, 999], 4, &mut st, |_| Ok(3), |_, _| Ok(()))
            .is_err()
    );
    // A state too small, a zero chunk, a state of another model.
    let mut small = vec![0.0f32; 10];
    assert!(LlamaState::new(&cfg, 4, &mut small).is_err());
    assert!(LlamaState::new(&cfg, 0, &mut arena).is_err());
}

/// Every sampler stage through a real model: reproducible for a seed, and
/// each drawn token survives its filters.
#[test]
fn samplers_drive_the_model() {
    use constml::decode::{Sampler, SamplerScratchDyn};
    use constml::rand_core::SeedableRng;
    let ckpt = Llama2cCheckpoint::from_bytes(GQA).unwrap();
    let cfg = *ckpt.config();
    let m = Llama::<f32>::new(cfg, ckpt.weights().unwrap()).unwrap();
    let tok = tokenizer();
    let prompt = tok.encode("hello world", true, false).unwrap();
    let k = 5;
    for sampler in [
        Sampler::new().with_temperature(0.8f32),
        Sampler::new().with_top_k(k),
        Sampler::new().with_temperature(1.2).with_top_p(0.7),
        Sampler::new().with_min_p(0.2),
        Sampler::new()
            .with_temperature(0.9)
            .with_top_k(k)
            .with_top_p(0.9)
            .with_min_p(0.05),
    ] {
        let run = |seed: u64| -> Vec<usize> {
            let mut arena = vec![0.0f32; cfg.state_len(4)];
            let mut st = LlamaState::new(&cfg, 4, &mut arena).unwrap();
            let mut scratch = SamplerScratchDyn::new(cfg.vocab_size).unwrap();
            let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(seed);
            let mut seq = Vec::new();
            m.generate(
                &prompt,
                30,
                &mut st,
                |logits| {
                    let t = sampler.sample_dyn(logits, &mut scratch, &mut rng)?;
                    if sampler.top_k.is_some() {
                        // The drawn token is among the k largest logits.
                        let above = logits.iter().filter(|&&v| v > logits[t]).count();
                        assert!(
                            above < k,
                            "{sampler:?}: token {t} has {above} larger logits"
                        );
                    }
                    Ok(t)
                },
                |_, next| {
                    seq.push(next);
                    Ok(())
                },
            )
            .unwrap();
            seq
        };
        let a = run(11);
        assert_eq!(a, run(11), "{sampler:?}: same seed, same tokens");
        assert!(a.len() >= prompt.len() - 1, "{sampler:?}");
    }
}

/// Review cases: a run that ends inside the prompt still shows the prompt
/// token its last position was given (as llama2.c prints it); a state of
/// another configuration is refused before anything is reset.
#[test]
fn generation_edge_cases() {
    let ckpt = Llama2cCheckpoint::from_bytes(SHARED).unwrap();
    let cfg = *ckpt.config();
    let m = Llama::<f32>::new(cfg, ckpt.weights().unwrap()).unwrap();
    let mut arena = vec![0.0f32; cfg.state_len(4)];
    let mut st = LlamaState::new(&cfg, 4, &mut arena).unwrap();
    let prompt = [1, 10, 11, 12, 13];
    let mut pairs = Vec::new();
    let n = m
        .generate(
            &prompt,
            3,
            &mut st,
            |_| Ok(5),
            |a, b| {
                pairs.push((a, b));
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(pairs, [(1, 10), (10, 11), (11, 12)]);
    // A BOS inside the prompt stops there.
    pairs.clear();
    m.generate(
        &[1, 10, 1, 12],
        0,
        &mut st,
        |_| Ok(5),
        |a, b| {
            pairs.push((a, b));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(pairs, [(1, 10)]);
    // Another model's state: an error, the state untouched.
    let ckpt2 = Llama2cCheckpoint::from_bytes(GQA).unwrap();
    let m2 = Llama::<f32>::new(*ckpt2.config(), ckpt2.weights().unwrap()).unwrap();
    let before = st.position();
    assert!(
        m2.generate(&[1, 5], 4, &mut st, |_| Ok(5), |_, _| Ok(()))
            .is_err()
    );
    assert_eq!(st.position(), before);
}

/// Beam search through `LlamaBeams`: one beam is greedy decoding, and every
/// returned hypothesis's score is the sum of its tokens' log-probabilities
/// recomputed from scratch (so reordering moved the right caches).
#[test]
fn beam_search_drives_the_model() {
    use constml::decode::{BeamConfig, BeamScratchDyn, HypothesesDyn, beam_search_dyn};
    use constml::models::LlamaBeams;
    let ckpt = Llama2cCheckpoint::from_bytes(GQA).unwrap();
    let cfg = *ckpt.config();
    let m = Llama::<f32>::new(cfg, ckpt.weights().unwrap()).unwrap();
    let prompt = tokenizer().encode("the end", true, false).unwrap();
    let max_new = 8;
    let search = |beams: usize| -> HypothesesDyn<f32> {
        let mut arenas: Vec<Vec<f32>> = (0..2 * beams)
            .map(|_| vec![0.0f32; cfg.state_len(1)])
            .collect();
        let mut all: Vec<LlamaState<'_, f32>> = arenas
            .iter_mut()
            .map(|a| LlamaState::new(&cfg, 1, a).unwrap())
            .collect();
        let (states, spares) = all.split_at_mut(beams);
        let mut model = LlamaBeams::new(&m, states, spares).unwrap();
        let bc = BeamConfig::new(1usize)
            .with_num_return(beams)
            .with_length_penalty(0.0);
        let mut scratch = BeamScratchDyn::new(cfg.vocab_size, beams, max_new).unwrap();
        let mut out = HypothesesDyn::new(beams, max_new).unwrap();
        beam_search_dyn(&mut model, &prompt, &bc, &mut scratch, &mut out).unwrap();
        out
    };
    // One beam: greedy.
    let one = search(1);
    let mut arena = vec![0.0f32; cfg.state_len(prompt.len())];
    let mut st = LlamaState::new(&cfg, prompt.len(), &mut arena).unwrap();
    m.forward(&prompt, &mut st, LogitRows::Last).unwrap();
    let mut greedy = Vec::new();
    for _ in 0..max_new {
        let t = constml::decode::greedy_dyn(st.logits()).unwrap();
        greedy.push(t);
        if t == 1 {
            break;
        }
        m.forward(&[t], &mut st, LogitRows::Last).unwrap();
    }
    assert_eq!(one.tokens(0).unwrap(), &greedy[..]);
    // Three beams: each score (length_penalty 0: the plain sum) recomputed.
    let three = search(3);
    for i in 0..3 {
        let toks = three.tokens(i).unwrap();
        let mut seq = prompt.clone();
        let mut arena = vec![0.0f32; cfg.state_len(prompt.len() + max_new)];
        let mut st = LlamaState::new(&cfg, prompt.len() + max_new, &mut arena).unwrap();
        seq.extend_from_slice(toks);
        m.forward(&seq[..seq.len() - 1], &mut st, LogitRows::All)
            .unwrap();
        let v = cfg.vocab_size;
        let mut sum = 0.0f64;
        for (j, &t) in toks.iter().enumerate() {
            let row = &st.logits()[(prompt.len() - 1 + j) * v..(prompt.len() + j) * v];
            let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = mx + row.iter().map(|&x| (x as f64 - mx).exp()).sum::<f64>().ln();
            sum += row[t] as f64 - lse;
        }
        let s = three.score(i).unwrap() as f64;
        assert!(
            (s - sum).abs() < 1e-3,
            "hypothesis {i}: score {s} vs recomputed {sum}"
        );
    }
    assert!(three.score(0).unwrap() >= one.score(0).unwrap() - 1e-4);
}
