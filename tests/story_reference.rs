//! The main example's trained model (`examples/story/`) against the PyTorch
//! model it was trained as: logits for every position of a prompt, from the
//! exported weights (tests/reference/story.bin, written by
//! `examples/story/train.py`), within 1e-4; greedy decoding gives PyTorch's
//! tokens; and its tokenizer encodes the prompt as the training script did.

mod common;

use common::{RefFile, assert_close, entry, to_vec};
use constml::models::{Llama, Llama2cCheckpoint, LlamaState, LogitRows, Tokenizer};
use constml::{Scalar, Simd};

static BIN: &[u8] = include_bytes!("reference/story.bin");
static MODEL: &[u8] = include_bytes!("../examples/story/model.bin");
static TOKENIZER: &[u8] = include_bytes!("../examples/story/tokenizer.bin");

#[test]
fn trained_model_logits_match_pytorch() {
    let file = RefFile::parse(BIN).expect("story.bin is a CMLREF01 file");
    let e = entry(&file, "story/prompt_ids");
    let ids: Vec<usize> = (0..e.len()).map(|i| e.get_i64(i) as usize).collect();
    let want: Vec<f32> = to_vec(&entry(&file, "story/logits"));
    let ckpt = Llama2cCheckpoint::from_bytes(MODEL).unwrap();
    let cfg = *ckpt.config();
    assert!(MODEL.len() <= 2 << 20, "the model fits 2 MiB");
    let mut arena = vec![0.0f32; cfg.state_len(ids.len())];
    let mut st = LlamaState::new(&cfg, ids.len(), &mut arena).unwrap();
    Llama::<f32, Simd>::new(cfg, ckpt.weights().unwrap())
        .unwrap()
        .forward(&ids, &mut st, LogitRows::All)
        .unwrap();
    assert_close("story logits (Simd)", st.logits(), &want, 0.0, 1e-4);
    st.reset();
    Llama::<f32, Scalar>::new(cfg, ckpt.weights().unwrap())
        .unwrap()
        .forward(&ids, &mut st, LogitRows::All)
        .unwrap();
    assert_close("story logits (Scalar)", st.logits(), &want, 0.0, 1e-4);
    // Greedy decoding continues as the PyTorch model did (its top-2 logit
    // gap along the run is at least 0.028).
    let g = entry(&file, "story/greedy_ids");
    let want_greedy: Vec<usize> = (0..g.len()).map(|i| g.get_i64(i) as usize).collect();
    let m = Llama::<f32>::new(cfg, ckpt.weights().unwrap()).unwrap();
    let mut arena = vec![0.0f32; cfg.state_len(ids.len())];
    let mut st = LlamaState::new(&cfg, ids.len(), &mut arena).unwrap();
    let mut seq = ids.clone();
    m.forward(&ids, &mut st, LogitRows::Last).unwrap();
    while seq.len() < want_greedy.len() {
        let t = constml::decode::greedy_dyn(st.logits()).unwrap();
        seq.push(t);
        m.forward(&[t], &mut st, LogitRows::Last).unwrap();
    }
    assert_eq!(seq, want_greedy);
    // The prompt ids came from the llama2.c encoding rule in Python: the
    // Rust tokenizer gives the same ids for the decoded prompt.
    let tok = Tokenizer::from_bytes(TOKENIZER, cfg.vocab_size).unwrap();
    let mut text = Vec::new();
    for w in ids.windows(2) {
        text.extend_from_slice(tok.decode(w[0], w[1]).unwrap());
    }
    let text = String::from_utf8(text).unwrap();
    assert_eq!(tok.encode(&text, true, false).unwrap(), ids, "{text:?}");
}
