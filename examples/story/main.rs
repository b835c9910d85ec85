//! The main example: a tiny Llama-family decoder trained for this repository
//! (`examples/story/train.py`, see `TRAINING.md` and `data/README.md`)
//! generates text with every decoding strategy, then measures tokens per
//! second with the Simd and Scalar backends, with and without the KV cache.
//! No network, no Python: the weights and the tokenizer are committed, in
//! llama2.c's formats, and built into the binary.
//!
//! ```text
//! cargo run --release --example story
//! cargo run --release --example story -- -i "Mr. Darcy" -s beam -w 4
//! cargo run --release --example story -- -s sample -t 0.8 -k 40 -p 0.9 --min-p 0.05 --seed 7
//! ```
//!
//! Flags: `-i` prompt; `-s` strategy (`all` — the default: greedy, beam and
//! sampling in turn — `greedy`, `beam`, `sample`); `-n` new tokens (default
//! 80); `-w` beam width (default 4); `-t` temperature, `-k` top-k, `-p`
//! top-p, `--min-p` (sampling; defaults T 0.8, top-p 0.9); `--seed` (default
//! 42); `--no-bench` skips the speed table.

use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;

use constml::decode::{
    BeamConfig, BeamScratchDyn, HypothesesDyn, Sampler, SamplerScratchDyn, beam_search_dyn,
};
use constml::models::{
    BOS, Llama, Llama2cCheckpoint, LlamaBeams, LlamaConfig, LlamaState, LogitRows, Tokenizer,
};
use constml::rand_core::SeedableRng;
use constml::{Backend, Scalar, Simd};
use rand_xoshiro::Xoshiro128PlusPlus;

static MODEL: &[u8] = include_bytes!("model.bin");
static TOKENIZER: &[u8] = include_bytes!("tokenizer.bin");

struct Args {
    prompt: String,
    strategy: String,
    new_tokens: usize,
    width: usize,
    temperature: f32,
    top_k: Option<usize>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    seed: u64,
    bench: bool,
}

fn parse() -> Result<Args, Box<dyn Error>> {
    let mut a = Args {
        prompt: "Elizabeth was".into(),
        strategy: "all".into(),
        new_tokens: 80,
        width: 4,
        temperature: 0.8,
        top_k: None,
        top_p: Some(0.9),
        min_p: None,
        seed: 42,
        bench: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-bench" {
            a.bench = false;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "-i" => a.prompt = v,
            "-s" => a.strategy = v,
            "-n" => a.new_tokens = v.parse()?,
            "-w" => a.width = v.parse()?,
            "-t" => a.temperature = v.parse()?,
            "-k" => a.top_k = Some(v.parse()?),
            "-p" => a.top_p = Some(v.parse()?),
            "--min-p" => a.min_p = Some(v.parse()?),
            "--seed" => a.seed = v.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if !["all", "greedy", "beam", "sample"].contains(&a.strategy.as_str()) {
        return Err("-s: one of all, greedy, beam, sample".into());
    }
    if a.width == 0 || a.new_tokens == 0 {
        return Err("-w and -n must be at least 1".into());
    }
    Ok(a)
}

/// The text of `ids` (after the prompt's last token `prev`), raw bytes
/// decoded as UTF-8.
fn text(tok: &Tokenizer, prev: usize, ids: &[usize]) -> Result<String, Box<dyn Error>> {
    let mut bytes = Vec::new();
    let mut p = prev;
    for &t in ids {
        bytes.extend_from_slice(tok.decode(p, t)?);
        p = t;
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Greedy or sampled continuation through the cached generation loop.
fn sample(
    m: &Llama<'_, f32>,
    cfg: &LlamaConfig,
    prompt: &[usize],
    n: usize,
    sampler: &Sampler<f32>,
    seed: u64,
) -> Result<Vec<usize>, Box<dyn Error>> {
    let mut arena = vec![0.0f32; cfg.state_len(prompt.len())];
    let mut st = LlamaState::new(cfg, prompt.len(), &mut arena)?;
    let mut scratch = SamplerScratchDyn::new(cfg.vocab_size)?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(seed);
    let mut out = Vec::new();
    let steps = (prompt.len() + n).min(cfg.seq_len);
    m.generate(
        prompt,
        steps,
        &mut st,
        |logits| sampler.sample_dyn(logits, &mut scratch, &mut rng),
        |_, next| {
            out.push(next);
            Ok(())
        },
    )?;
    // `emit` also saw the prompt's own tokens after the first.
    Ok(out.split_off(prompt.len() - 1))
}

fn beam(
    m: &Llama<'_, f32>,
    cfg: &LlamaConfig,
    prompt: &[usize],
    n: usize,
    width: usize,
) -> Result<(Vec<usize>, f32), Box<dyn Error>> {
    let n = n.min(cfg.seq_len - prompt.len());
    let mut arenas: Vec<Vec<f32>> = (0..2 * width)
        .map(|_| vec![0.0f32; cfg.state_len(1)])
        .collect();
    let mut all: Vec<LlamaState<'_, f32>> = arenas
        .iter_mut()
        .map(|a| LlamaState::new(cfg, 1, a))
        .collect::<constml::Result<_>>()?;
    let (states, spares) = all.split_at_mut(width);
    let mut model = LlamaBeams::new(m, states, spares)?;
    let bc = BeamConfig::new(BOS);
    let mut scratch = BeamScratchDyn::new(cfg.vocab_size, width, n)?;
    let mut out = HypothesesDyn::new(width, n)?;
    beam_search_dyn(&mut model, prompt, &bc, &mut scratch, &mut out)?;
    let mut best = out.tokens(0).ok_or("no hypothesis")?.to_vec();
    // A finished hypothesis ends with its end token (BOS starts the next
    // paragraph in the training text): not part of the text.
    if best.last() == Some(&BOS) {
        best.pop();
    }
    Ok((best, out.score(0).unwrap_or(f32::NAN)))
}

/// Tokens per second of greedy decoding `n` tokens after `prompt`: with the
/// KV cache (one token per step), or without it (every step recomputes the
/// whole sequence so far).
fn speed<B: Backend>(
    cfg: &LlamaConfig,
    ckpt: &Llama2cCheckpoint,
    prompt: &[usize],
    n: usize,
    cached: bool,
) -> Result<f64, Box<dyn Error>> {
    let m = Llama::<f32, B>::new(*cfg, ckpt.weights()?)?;
    let total = (prompt.len() + n).min(cfg.seq_len);
    let mut arena = vec![0.0f32; cfg.state_len(total)];
    let mut st = LlamaState::new(cfg, total, &mut arena)?;
    let mut seq = prompt.to_vec();
    m.forward(&seq, &mut st, LogitRows::Last)?;
    let t0 = Instant::now();
    let mut made = 0;
    while seq.len() < total {
        let next = B::argmax(st.logits())?;
        seq.push(next);
        made += 1;
        if cached {
            m.forward(&[next], &mut st, LogitRows::Last)?;
        } else {
            st.reset();
            m.forward(&seq, &mut st, LogitRows::Last)?;
        }
    }
    Ok(made as f64 / t0.elapsed().as_secs_f64())
}

fn run() -> Result<(), Box<dyn Error>> {
    let a = parse()?;
    let ckpt = Llama2cCheckpoint::from_bytes(MODEL)?;
    let cfg = *ckpt.config();
    let tok = Tokenizer::from_bytes(TOKENIZER, cfg.vocab_size)?;
    let m = Llama::<f32>::new(cfg, ckpt.weights()?)?;
    let prompt = tok.encode(&a.prompt, true, false)?;
    if prompt.len() >= cfg.seq_len {
        return Err(format!(
            "the prompt is {} tokens; the context is {}",
            prompt.len(),
            cfg.seq_len
        )
        .into());
    }
    let last = *prompt.last().ok_or("empty prompt")?;
    println!(
        "constml story model: Llama (dim {}, {} layers, {} heads, vocabulary {}, context {}), {:.2} MB of f32 weights",
        cfg.dim,
        cfg.n_layers,
        cfg.n_heads,
        cfg.vocab_size,
        cfg.seq_len,
        ckpt.weight_bytes() as f64 / 1e6
    );
    println!("prompt: {:?} ({} tokens)\n", a.prompt, prompt.len());
    let show = |name: &str, ids: &[usize]| -> Result<(), Box<dyn Error>> {
        println!("[{name}]\n{}{}\n", a.prompt, text(&tok, last, ids)?);
        Ok(())
    };
    let all = a.strategy == "all";
    if all || a.strategy == "greedy" {
        let ids = sample(
            &m,
            &cfg,
            &prompt,
            a.new_tokens,
            &Sampler::new().with_temperature(0.0),
            a.seed,
        )?;
        show("greedy", &ids)?;
    }
    if all || a.strategy == "beam" {
        let (ids, score) = beam(&m, &cfg, &prompt, a.new_tokens.min(40), a.width)?;
        show(
            &format!("beam search, width {}, score {score:.3}", a.width),
            &ids,
        )?;
    }
    if all || a.strategy == "sample" {
        let mut s = Sampler::new().with_temperature(a.temperature);
        if let Some(k) = a.top_k {
            s = s.with_top_k(k);
        }
        if let Some(p) = a.top_p {
            s = s.with_top_p(p);
        }
        if let Some(p) = a.min_p {
            s = s.with_min_p(p);
        }
        let ids = sample(&m, &cfg, &prompt, a.new_tokens, &s, a.seed)?;
        let mut name = format!("sampling: temperature {}", a.temperature);
        if let Some(k) = a.top_k {
            name += &format!(", top-k {k}");
        }
        if let Some(p) = a.top_p {
            name += &format!(", top-p {p}");
        }
        if let Some(p) = a.min_p {
            name += &format!(", min-p {p}");
        }
        show(&format!("{name}, seed {}", a.seed), &ids)?;
    }
    if a.bench {
        let n = 128;
        println!("greedy decoding of {n} tokens after the prompt, one thread:");
        println!("{:>8} {:>14} {:>14}", "backend", "with KV cache", "without");
        for (name, with, without) in [
            (
                "Simd",
                speed::<Simd>(&cfg, &ckpt, &prompt, n, true)?,
                speed::<Simd>(&cfg, &ckpt, &prompt, n, false)?,
            ),
            (
                "Scalar",
                speed::<Scalar>(&cfg, &ckpt, &prompt, n, true)?,
                speed::<Scalar>(&cfg, &ckpt, &prompt, n, false)?,
            ),
        ] {
            println!("{name:>8} {:>10.0} tok/s {:>8.0} tok/s", with, without);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("story: {e}");
            ExitCode::FAILURE
        }
    }
}
