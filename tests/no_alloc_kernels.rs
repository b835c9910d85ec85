//! Proves that what the firmware links allocates nothing: a counting global
//! allocator wraps the system one, and the code the on-target suite runs as
//! its "every no_std entry point" test — `tests/common/exercise.rs`, included
//! here file for file: every kernel, the attention family and decoding, both
//! backends — runs between two reads of this thread's counter. So does the
//! decode step of `examples/decode_step`.

#[path = "common/counting.rs"]
mod counting;

#[path = "common/exercise.rs"]
mod exercise;

#[path = "../examples/decode_step/tiny.rs"]
#[allow(dead_code)]
mod tiny;

#[path = "../examples/mlp_digits/mlp.rs"]
#[allow(dead_code)]
mod mlp;

#[path = "../examples/cnn_digits/cnn.rs"]
#[allow(dead_code)]
mod cnn;

#[path = "../examples/lstm_sine/model.rs"]
#[allow(dead_code)]
mod sine;

use counting::allocations_during;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

#[test]
fn firmware_code_allocates_nothing() {
    // Sanity: the counter does count.
    let n = allocations_during(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(n, 1);

    let mut result = Ok(0.0);
    let n = allocations_during(|| result = exercise::run_all(std::hint::black_box(0.37)));
    assert_eq!(n, 0, "the firmware's no_std paths allocated {n} times");
    let r = result.expect("every call of the firmware exercise succeeds");
    assert!(r.is_finite(), "checksum {r}");
}

#[test]
fn decode_step_allocates_nothing() {
    use constml::rand_core::SeedableRng;
    let sampler = constml::decode::Sampler::new()
        .with_temperature(0.8)
        .with_top_k(10);
    let mut rng = rand_xoshiro::Xoshiro128PlusPlus::seed_from_u64(3);
    let mut state = Box::new(tiny::State::new());
    let mut result = Ok(0);
    let n = allocations_during(|| {
        let mut t = 1;
        for _ in 0..70 {
            match state.step(t, &sampler, &mut rng) {
                Ok(next) => t = next,
                Err(e) => {
                    result = Err(e);
                    return;
                }
            }
        }
        result = Ok(t);
    });
    assert_eq!(n, 0, "the decode step allocated {n} times");
    assert!(result.expect("every step succeeds") < tiny::V);
    assert_eq!(state.position(), 70);
}

#[test]
fn mlp_training_step_allocates_nothing() {
    let mut net: Box<mlp::Mlp> = Box::new(mlp::Mlp::new(1, 1e-3));
    let x: Vec<[f32; mlp::IN]> = (0..mlp::BATCH)
        .map(|i| core::array::from_fn(|j| ((i * 7 + j) % 17) as f32 / 16.0))
        .collect();
    let y: Vec<usize> = (0..mlp::BATCH).map(|i| i % mlp::OUT).collect();
    let mut losses = [0.0f32; 3];
    let n = allocations_during(|| {
        for l in losses.iter_mut() {
            *l = net
                .train_step(&x, &y, mlp::BATCH)
                .expect("a training step succeeds");
        }
        net.train_step(&x, &y, 5).expect("a partial batch");
    });
    assert_eq!(n, 0, "the training step allocated {n} times");
    assert!(losses[2] < losses[0], "{losses:?}");
}

#[test]
fn cnn_training_step_allocates_nothing() {
    // The network is large (activations of a whole batch): build it on a
    // thread with room for it, then box it.
    let handle = std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            let mut net: Box<cnn::Cnn> = Box::new(cnn::Cnn::new(1, 1e-3));
            let x: Vec<f32> = (0..cnn::BATCH * cnn::IN)
                .map(|i| ((i * 7) % 17) as f32 / 16.0)
                .collect();
            let y: Vec<usize> = (0..cnn::BATCH).map(|i| i % cnn::OUT).collect();
            let mut losses = [0.0f32; 3];
            let n = allocations_during(|| {
                for l in losses.iter_mut() {
                    *l = net
                        .train_step(&x, &y, cnn::BATCH)
                        .expect("a training step succeeds");
                }
                net.train_step(&x, &y, 3).expect("a partial batch");
            });
            // Folding the eval-mode BatchNorms into the convolutions keeps the
            // eval-mode logits (to rounding); a folded network refuses training.
            let mut folded = net.clone();
            folded.fold().expect("fold");
            net.forward(&x, cnn::BATCH, false).expect("eval");
            folded.forward(&x, cnn::BATCH, false).expect("folded eval");
            for (a, b) in net.logits().iter().zip(folded.logits()) {
                assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
            }
            assert!(folded.train_step(&x, &y, 1).is_err());
            (n, losses)
        })
        .expect("a thread");
    let (n, losses) = handle.join().expect("the thread finishes");
    assert_eq!(n, 0, "the CNN training step allocated {n} times");
    assert!(losses[2] < losses[0], "{losses:?}");
}

#[test]
fn lstm_training_step_allocates_nothing() {
    let handle = std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            let mut m: Box<sine::SineModel> = Box::new(sine::SineModel::new(3, 1e-2).unwrap());
            let x: sine::Windows = core::array::from_fn(|n| {
                core::array::from_fn(|t| [((n * sine::S + t) as f32 * 0.25).sin()])
            });
            let y: [f32; sine::N * sine::S] =
                core::array::from_fn(|i| ((i + 1) as f32 * 0.25).sin());
            let mut losses = [0.0f32; 4];
            let n = allocations_during(|| {
                for l in losses.iter_mut() {
                    *l = m.train_step(&x, &y).expect("a training step succeeds");
                }
            });
            // A non-finite learning rate is refused and leaves the model as it was.
            let before = m.head_w;
            assert!(m.set_lr(f32::NAN).is_err());
            assert!(m.set_lr(f32::INFINITY).is_err());
            assert_eq!(m.head_w, before);
            (n, losses)
        })
        .expect("a thread");
    let (n, losses) = handle.join().expect("the thread finishes");
    assert_eq!(n, 0, "the LSTM training step allocated {n} times");
    assert!(losses[3] < losses[0], "{losses:?}");
}

#[test]
fn llama_decode_step_allocates_nothing() {
    use constml::models::{
        LLAMA2C_HEADER_BYTES, Llama, LlamaState, LogitRows, decode_f32_le, llama2c_config,
        llama2c_weights,
    };
    // The no_std path: header, little-endian decoding into caller storage,
    // weights viewed in place.
    let bytes: &[u8] = include_bytes!("reference/llama/tiny_gqa.bin");
    let cfg = llama2c_config(bytes).expect("the fixture's header parses");
    let body = &bytes[LLAMA2C_HEADER_BYTES..];
    let mut floats = vec![0.0f32; body.len() / 4];
    decode_f32_le(body, &mut floats).unwrap();
    let m = Llama::<f32>::new(cfg, llama2c_weights(&cfg, &floats).unwrap()).unwrap();
    let mut arena = vec![0.0f32; cfg.state_len(4)];
    let mut st = LlamaState::new(&cfg, 4, &mut arena).unwrap();
    let n = allocations_during(|| {
        m.forward(&[1, 300, 17, 42], &mut st, LogitRows::Last)
            .expect("a prompt chunk");
        for t in [5, 6, 7] {
            m.forward(&[t], &mut st, LogitRows::Last)
                .expect("a decode step");
        }
    });
    assert_eq!(n, 0, "a Llama decode step allocated {n} times");
    assert_eq!(st.position(), 7);
}

#[test]
fn q8_llama_load_and_decode_allocate_nothing() {
    use constml::models::quant::Q8Scratch;
    use constml::models::{
        LlamaQ8, LlamaState, LogitRows, llama_q8_scratch_len, llama2c_q8_norms_len,
        llama2c_q8_weights,
    };
    // The no_std path: the version-2 file's bytes viewed in place, the norms
    // decoded into caller storage, the activation scratch caller-owned.
    let bytes: &[u8] = include_bytes!("reference/llama/tiny_gqa_q80.bin");
    let mut norms = vec![0.0f32; 4096];
    let mut arena = vec![0.0f32; 1 << 16];
    let (mut sq, mut ss) = (vec![0i8; 1024], vec![0.0f32; 1024]);
    let mut last = 0.0;
    let n = allocations_during(|| {
        let (cfg, w) = llama2c_q8_weights(bytes, &mut norms).expect("the fixture loads");
        assert!(llama2c_q8_norms_len(&cfg) <= 4096 && cfg.state_len(4) <= 1 << 16);
        let (nq, ns) = llama_q8_scratch_len(&cfg, w.group_size);
        assert!(nq <= 1024 && ns <= 1024);
        let m = LlamaQ8::<constml::Simd>::new(cfg, w).expect("shapes fit");
        let mut st = LlamaState::new(&cfg, 4, &mut arena).expect("arena fits");
        let mut scratch = Q8Scratch {
            q: &mut sq,
            s: &mut ss,
        };
        m.forward(&[1, 300, 17, 42], &mut st, &mut scratch, LogitRows::Last)
            .expect("a prompt chunk");
        for t in [5, 6, 7] {
            m.forward(&[t], &mut st, &mut scratch, LogitRows::Last)
                .expect("a decode step");
        }
        assert_eq!(st.position(), 7);
        last = st.logits()[0];
    });
    assert_eq!(n, 0, "a Q8_0 Llama load and decode allocated {n} times");
    assert!(last.is_finite());
}
