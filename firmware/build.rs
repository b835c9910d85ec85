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
];

/// The entries of a CMLREF01 file whose names pass `keep`, as a CMLREF01 file
/// (format in tests/reference/refvec.py).
fn subset(b: &[u8], keep: impl Fn(&str) -> bool) -> Vec<u8> {
    assert_eq!(&b[..8], b"CMLREF01", "not a reference file");
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let count = u32_at(8);
    let (mut at, mut kept, mut body) = (12, 0u32, Vec::new());
    for _ in 0..count {
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
        at += n * size;
        if keep(name) {
            body.extend_from_slice(&b[start..at]);
            kept += 1;
        }
    }
    let mut out = b"CMLREF01".to_vec();
    out.extend_from_slice(&kept.to_le_bytes());
    out.extend_from_slice(&body);
    out
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
