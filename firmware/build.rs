//! Picks the memory map of the QEMU machine the target runs on, and links with
//! the runtime crate's linker script (cortex-m-rt's `link.x`, riscv-rt's `link.x`).
use std::{env, fs, path::PathBuf};

/// The reference entries embedded in the suite: per file, the name prefixes
/// every target gets and those only the large targets (M4F, RISC-V) get.
type Keep = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);
const KEEP: &[Keep] = &[
    (
        "foundation.bin",
        &[
            "gemm/3x5x7/f32/",
            "gemm/4x16x4/f32/",
            "gemm/3x0x4/f32/",
            "matvec/17x33/f32/",
            "matvec/0x5/f32/",
            "softmax/rand15/f32/",
            "softmax/some_neg_inf17/f32/",
            "act/f32/",
        ],
        &["gemm/", "matvec/", "softmax/"],
    ),
    (
        "nn.bin",
        &[
            "linear/", "act/", "relu/", "sigmoid/", "tanh/", "silu/", "gelu", "ce/", "opt/",
        ],
        &[],
    ),
    (
        "norm.bin",
        &["ln_affine/", "rms_eps/"],
        &["ln_wide/", "rms_wide/"],
    ),
    ("position.bin", &["rope/inter_d64/"], &["rope/half_d64/"]),
    (
        "attention.bin",
        &["sdpa_plain/", "sdpa_causal/", "sdpa_window/"],
        &[],
    ),
    ("ml.bin", &["iris/x", "kmeans/given_a/"], &[]),
    ("conv.bin", &["conv/s1_p1_d1/"], &[]),
    ("rnn.bin", &["rnn/lstm_init/"], &[]),
    ("llama.bin", &[], &["llama/tiny_shared/"]),
    ("story.bin", &[], &["story/prompt_ids", "story/greedy_ids"]),
    ("q8.bin", &[], &["q8/tiny_shared/np_logits"]),
];

/// The entries of a CMLREF01 file (format in tests/reference/refvec.py):
/// `(name, the whole record, its data)`.
fn entries(b: &[u8]) -> Vec<(&str, &[u8], &[u8])> {
    assert_eq!(&b[..8], b"CMLREF01", "not a reference file");
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let (mut at, mut out) = (12, Vec::new());
    for _ in 0..u32_at(8) {
        let start = at;
        let nl = u16::from_le_bytes([b[at], b[at + 1]]) as usize;
        let name = std::str::from_utf8(&b[at + 2..at + 2 + nl]).unwrap();
        at += 2 + nl;
        let size = match b[at] {
            1 => 4,
            2 | 3 => 8,
            _ => 1,
        };
        let ndim = b[at + 1] as usize;
        at += 2;
        let mut n = 1;
        for _ in 0..ndim {
            n *= u32_at(at);
            at += 4;
        }
        let data = at;
        at += n * size;
        out.push((name, &b[start..at], &b[data..at]));
    }
    out
}

/// The entries of a CMLREF01 file whose names pass `keep`, as a CMLREF01 file.
fn subset(b: &[u8], keep: impl Fn(&str) -> bool) -> Vec<u8> {
    let kept: Vec<&[u8]> = entries(b)
        .into_iter()
        .filter(|(name, _, _)| keep(name))
        .map(|(_, record, _)| record)
        .collect();
    let mut out = b"CMLREF01".to_vec();
    out.extend_from_slice(&(kept.len() as u32).to_le_bytes());
    for r in kept {
        out.extend_from_slice(r);
    }
    out
}

/// Quantizes the story model (examples/story/model.bin) to llama2.c's Q8_0
/// format with constml's exporter, and decodes it greedily on the host from the
/// reference prompt: `story_q80.bin` and `story_q8_greedy.bin` (the token ids
/// as little-endian u16) in OUT_DIR, for the `story_q8` demo, which checks that
/// the microcontroller picks the host's tokens.
fn story_q8(out: &std::path::Path) {
    use constml::models::quant::Q8Scratch;
    use constml::models::{
        Llama2cCheckpoint, Llama2cQ8Checkpoint, LlamaQ8, LlamaState, LogitRows,
        llama_q8_scratch_len, llama2c_q8_export,
    };
    println!("cargo:rerun-if-changed=../examples/story/model.bin");
    let ckpt = Llama2cCheckpoint::read("../examples/story/model.bin").expect("the story model");
    let cfg = *ckpt.config();
    // llama2.c's export.py default (64), halved until it divides dim (96).
    let mut gs = 64;
    while !cfg.dim.is_multiple_of(gs) {
        gs /= 2;
    }
    let bytes = llama2c_q8_export(&cfg, &ckpt.weights().expect("views"), gs).expect("quantizes");
    fs::write(out.join("story_q80.bin"), &bytes).expect("write story_q80.bin");
    let q = Llama2cQ8Checkpoint::from_vec(bytes).expect("reads back");
    let m = LlamaQ8::<constml::Scalar>::new(cfg, q.weights().expect("views")).expect("fits");
    let refs = std::fs::read("../tests/reference/story.bin").expect("story.bin");
    // prompt_ids and the length of the greedy run from the reference file.
    let find = |name: &str| -> Vec<i64> {
        let (_, _, data) = *entries(&refs).iter().find(|e| e.0 == name).expect("entry");
        data.chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let prompt: Vec<usize> = find("story/prompt_ids")
        .iter()
        .map(|&v| v as usize)
        .collect();
    let total = find("story/greedy_ids").len();
    let mut arena = vec![0.0f32; cfg.state_len(prompt.len())];
    let mut st = LlamaState::new(&cfg, prompt.len(), &mut arena).expect("state");
    let (nq, ns) = llama_q8_scratch_len(&cfg, gs);
    let (mut sq, mut ss) = (vec![0i8; nq], vec![0.0f32; ns]);
    let mut sc = Q8Scratch {
        q: &mut sq,
        s: &mut ss,
    };
    m.forward(&prompt, &mut st, &mut sc, LogitRows::Last)
        .expect("prefill");
    let mut seq = prompt.clone();
    while seq.len() < total {
        let t = constml::decode::greedy_dyn(st.logits()).expect("logits");
        seq.push(t);
        m.forward(&[t], &mut st, &mut sc, LogitRows::Last)
            .expect("step");
    }
    let ids: Vec<u8> = seq.iter().flat_map(|&t| (t as u16).to_le_bytes()).collect();
    fs::write(out.join("story_q8_greedy.bin"), ids).expect("write the greedy ids");
}

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let map: &[u8] = match target.as_str() {
        "thumbv7em-none-eabihf" => include_bytes!("memory/mps2-an386.x"),
        "thumbv6m-none-eabi" => include_bytes!("memory/microbit.x"),
        "riscv32imac-unknown-none-elf" => include_bytes!("memory/virt.x"),
        other => panic!("constml-firmware: no QEMU machine for target {other:?}"),
    };
    // The M0's suite is a subset sized for 256 KiB of flash and 16 KiB of RAM.
    println!("cargo::rustc-check-cfg=cfg(small_target)");
    if target == "thumbv6m-none-eabi" {
        println!("cargo::rustc-cfg=small_target");
    }
    fs::write(out.join("memory.x"), map).expect("write memory.x");
    if target == "thumbv7em-none-eabihf" {
        story_q8(&out);
    }
    let small = target == "thumbv6m-none-eabi";
    for (file, every, large) in KEEP {
        let bytes = fs::read(format!("../tests/reference/{file}")).expect("read a reference file");
        let keep = |name: &str| {
            let hit = |ps: &[&str]| ps.iter().any(|p| name.starts_with(p));
            // The suite compares f32 results with f32 references, except the
            // norms, whose references are stored in f64 only.
            let wanted = *file == "norm.bin" || !name.contains("f64");
            wanted && (hit(every) || (!small && hit(large)))
        };
        fs::write(out.join(file), subset(&bytes, keep)).expect("write a reference subset");
        println!("cargo:rerun-if-changed=../tests/reference/{file}");
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");
    // cortex-m-rt's link.x includes memory.x itself; riscv-rt's needs it first.
    if target.starts_with("riscv") {
        println!("cargo:rustc-link-arg=-Tmemory.x");
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
}
