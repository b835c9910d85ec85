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
//! The checkpoint is llama2.c's f32 export (what its `run` reads) or its
//! version-2 Q8_0 export (what its `runq` reads; recognised by its magic): the
//! same command runs either, the Q8_0 one with `runq`'s arithmetic.
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
use constml::models::quant::Q8Scratch;
use constml::models::{
    LLAMA2C_Q8_MAGIC, Llama, Llama2cCheckpoint, Llama2cQ8Checkpoint, LlamaConfig, LlamaQ8,
    LlamaState, Tokenizer, llama_q8_scratch_len, printable,
};
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

/// A checkpoint of either format.
enum Checkpoint {
    F32(Llama2cCheckpoint),
    Q8(Llama2cQ8Checkpoint),
}

impl Checkpoint {
    fn read(path: &str) -> Result<Self, Box<dyn Error>> {
        let at = |e: constml::Error| format!("{path}: {e}");
        let mut magic = [0u8; 4];
        std::io::Read::read_exact(&mut std::fs::File::open(path)?, &mut magic)
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(if u32::from_le_bytes(magic) == LLAMA2C_Q8_MAGIC {
            Checkpoint::Q8(Llama2cQ8Checkpoint::read(path).map_err(at)?)
        } else {
            Checkpoint::F32(Llama2cCheckpoint::read(path).map_err(at)?)
        })
    }

    fn config(&self) -> LlamaConfig {
        match self {
            Checkpoint::F32(c) => *c.config(),
            Checkpoint::Q8(c) => *c.config(),
        }
    }

    /// Bytes of weights a decode step streams, and the format's name.
    fn streamed(&self) -> (usize, &'static str) {
        match self {
            Checkpoint::F32(c) => (c.weight_bytes(), "f32"),
            Checkpoint::Q8(c) => (c.bytes().len(), "Q8_0"),
        }
    }
}

fn run<B: Backend>(a: &Args) -> Result<(), Box<dyn Error>> {
    let ckpt = Checkpoint::read(&a.checkpoint)?;
    let cfg = ckpt.config();
    let tok = Tokenizer::read(&a.tokenizer, cfg.vocab_size)
        .map_err(|e| format!("{}: {e}", a.tokenizer))?;
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
    let pick = |logits: &[f32]| {
        if first_decode.is_none() {
            first_decode = Some(Instant::now());
        } else {
            decoded += 1;
        }
        sampler.sample_dyn(logits, &mut scratch, &mut rng)
    };
    let emit = |prev, next| {
        let bytes = tok.decode(prev, next)?;
        if let Some(p) = printable(bytes) {
            out.write_all(p)
                .and_then(|_| out.flush())
                .map_err(|_| constml::Error::Model {
                    what: "stdout closed",
                })?;
        }
        Ok(())
    };
    let positions = match &ckpt {
        Checkpoint::F32(c) => Llama::<f32, B>::new(cfg, c.weights()?)?
            .generate(&prompt, a.steps, &mut state, pick, emit)?,
        Checkpoint::Q8(c) => {
            let (nq, ns) = llama_q8_scratch_len(&cfg, c.group_size());
            let (mut q, mut s) = (vec![0i8; nq], vec![0.0f32; ns]);
            let mut qs = Q8Scratch {
                q: &mut q,
                s: &mut s,
            };
            LlamaQ8::<B>::new(cfg, c.weights()?)?
                .generate(&prompt, a.steps, &mut state, &mut qs, pick, emit)?
        }
    };
    writeln!(out)?;
    if let Some(t0) = first_decode.filter(|_| decoded > 0) {
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "achieved tok/s: {:.1} ({} decode steps, {} positions, {:.1} MB of {} weights per step, backend {})",
            decoded as f64 / secs,
            decoded,
            positions,
            ckpt.streamed().0 as f64 / 1e6,
            ckpt.streamed().1,
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
