//! Text generation from a llama2.c checkpoint, with llama2.c's command line.
//!
//! ```text
//! cargo run --release --example llama2c -- <checkpoint> [options]
//!   -t <float>  temperature (default 1.0; 0 = greedy)
//!   -p <float>  top-p (default 0.9; 1 = off)
//!   -s <int>    random seed (default: the time)
//!   -n <int>    positions to run, prompt included (default 256; 0 = seq_len)
//!   -i <string> prompt
//!   -z <path>   tokenizer (default tokenizer.bin)
//!   -m <mode>   generate (the only mode)
//!   -b scalar   use the Scalar backend (default Simd)
//! ```
//!
//! Generation follows llama2.c's `run`: the prompt is encoded with BOS and
//! the dummy prefix, the run covers `-n` positions including the prompt and
//! stops at BOS, and the text is printed through llama2.c's printing filter.
//! At temperature 0 the tokens are llama2.c's; with sampling, the draw is
//! constml's reproducible sampler (temperature, then top-p), seeded with
//! `-s`, not llama2.c's generator. The prompt goes through as one chunk
//! (matrix products). The speed line goes to stderr: tokens per second of
//! the decode steps, and the weight bytes they stream.

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use constml::decode::{Sampler, SamplerScratchDyn};
use constml::models::{Llama, Llama2cCheckpoint, LlamaState, Tokenizer, printable};
use constml::rand_core::SeedableRng;
use constml::{Backend, Scalar, Simd};
use rand_xoshiro::Xoshiro128PlusPlus;

struct Args {
    checkpoint: String,
    temperature: f32,
    top_p: f32,
    seed: u64,
    steps: usize,
    prompt: String,
    tokenizer: String,
    scalar: bool,
}

fn usage() -> String {
    "usage: llama2c <checkpoint> [-t temperature] [-p top_p] [-s seed] [-n steps] [-i prompt] [-z tokenizer] [-m generate] [-b simd|scalar]".into()
}

fn parse() -> Result<Args, Box<dyn Error>> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let text = |v: &std::ffi::OsString| -> Result<String, Box<dyn Error>> {
        v.clone()
            .into_string()
            .map_err(|_| "an argument is not valid UTF-8".into())
    };
    let mut a = Args {
        checkpoint: text(argv.first().ok_or_else(usage)?)?,
        temperature: 1.0,
        top_p: 0.9,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        steps: 256,
        prompt: String::new(),
        tokenizer: "tokenizer.bin".into(),
        scalar: false,
    };
    let mut i = 1;
    while i < argv.len() {
        let flag = text(&argv[i])?;
        let value = text(argv.get(i + 1).ok_or_else(usage)?)?;
        match flag.as_str() {
            "-t" => a.temperature = value.parse()?,
            "-p" => a.top_p = value.parse()?,
            "-s" => a.seed = value.parse()?,
            "-n" => a.steps = value.parse()?,
            "-i" => a.prompt = value,
            "-z" => a.tokenizer = value,
            "-m" if value == "generate" => {}
            "-m" => return Err("only -m generate is supported".into()),
            "-b" => a.scalar = value == "scalar",
            _ => return Err(usage().into()),
        }
        i += 2;
    }
    if !(a.temperature.is_finite() && a.temperature >= 0.0) {
        return Err("-t: the temperature must be finite and at least 0".into());
    }
    if !(0.0..=1.0).contains(&a.top_p) {
        return Err("-p: top-p must be in [0, 1]".into());
    }
    Ok(a)
}

fn run<B: Backend>(a: &Args) -> Result<(), Box<dyn Error>> {
    let ckpt =
        Llama2cCheckpoint::read(&a.checkpoint).map_err(|e| format!("{}: {e}", a.checkpoint))?;
    let cfg = *ckpt.config();
    let tok = Tokenizer::read(&a.tokenizer, cfg.vocab_size)
        .map_err(|e| format!("{}: {e}", a.tokenizer))?;
    let model = Llama::<f32, B>::new(cfg, ckpt.weights()?)?;
    let prompt = tok.encode(&a.prompt, true, false)?;
    if prompt.len() > cfg.seq_len {
        return Err(format!(
            "the prompt is {} tokens, longer than the context of {}",
            prompt.len(),
            cfg.seq_len
        )
        .into());
    }
    let chunk = prompt.len().clamp(1, 64);
    // The state's size comes from the header: reserve it fallibly.
    let mut arena: Vec<f32> = Vec::new();
    arena
        .try_reserve_exact(cfg.state_len(chunk))
        .map_err(|_| "the model's state does not fit in memory")?;
    arena.resize(cfg.state_len(chunk), 0.0);
    let mut state = LlamaState::new(&cfg, chunk, &mut arena)?;
    let mut sampler = Sampler::new().with_temperature(a.temperature);
    if a.top_p < 1.0 {
        sampler = sampler.with_top_p(a.top_p);
    }
    let mut scratch = SamplerScratchDyn::new(cfg.vocab_size)?;
    let mut rng = Xoshiro128PlusPlus::seed_from_u64(a.seed);
    let mut out = std::io::stdout().lock();
    let mut first_decode: Option<Instant> = None;
    let mut decoded = 0usize;
    let positions = model.generate(
        &prompt,
        a.steps,
        &mut state,
        |logits| {
            if first_decode.is_none() {
                first_decode = Some(Instant::now());
            } else {
                decoded += 1;
            }
            sampler.sample_dyn(logits, &mut scratch, &mut rng)
        },
        |prev, next| {
            let bytes = tok.decode(prev, next)?;
            if let Some(p) = printable(bytes) {
                out.write_all(p)
                    .and_then(|_| out.flush())
                    .map_err(|_| constml::Error::Model {
                        what: "stdout closed",
                    })?;
            }
            Ok(())
        },
    )?;
    writeln!(out)?;
    if let Some(t0) = first_decode.filter(|_| decoded > 0) {
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "achieved tok/s: {:.1} ({} decode steps, {} positions, {:.1} MB of weights per step, backend {})",
            decoded as f64 / secs,
            decoded,
            positions,
            ckpt.weight_bytes() as f64 / 1e6,
            B::NAME
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse().and_then(|a| {
        if a.scalar {
            run::<Scalar>(&a)
        } else {
            run::<Simd>(&a)
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llama2c: {e}");
            ExitCode::FAILURE
        }
    }
}
