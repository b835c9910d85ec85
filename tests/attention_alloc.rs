//! The no_std attention paths allocate nothing: a counting global allocator
//! (per thread) around every const-face and views-face entry point.

#[path = "common/counting.rs"]
mod counting;

use constml::attention::*;
use constml::position::ShawRelative;
use constml::{MatMut, MatRef, Scalar};
use counting::allocations_during;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

fn fill<const N: usize>(seed: f32) -> [f32; N] {
    core::array::from_fn(|i| ((i as f32 + seed) * 0.37).sin())
}

static CACHE0: KvCache<f32, 2, 4, 8> = KvCache::new_ring();

#[test]
fn no_std_paths_do_not_allocate() {
    // Inputs and weights (allocation allowed here: none of this is measured).
    let q: [[f32; 8]; 3] = core::array::from_fn(|i| fill(i as f32));
    let k: [[f32; 8]; 5] = core::array::from_fn(|i| fill(10.0 + i as f32));
    let v: [[f32; 6]; 5] = core::array::from_fn(|i| fill(20.0 + i as f32));
    let mask = [[true, false, true, true, false]; 3];
    let bias = [[0.5f32; 5]; 3];
    let ak = [[0.1f32; 8]; 3];
    let av = [[0.2f32; 6]; 3];
    let shaw = ShawRelative::from_arrays(Some(&ak), Some(&av));
    let hook = |h: usize, i: usize, j: usize| (h + i) as f32 * 0.01 - j as f32 * 0.02;

    let gq: [[[f32; 4]; 4]; 3] =
        core::array::from_fn(|i| core::array::from_fn(|h| fill(h as f32 + i as f32)));
    let gk: [[[f32; 4]; 2]; 5] =
        core::array::from_fn(|i| core::array::from_fn(|h| fill(3.0 * h as f32 + i as f32)));

    let wq: [[[f32; 8]; 4]; 4] =
        core::array::from_fn(|h| core::array::from_fn(|r| fill(h as f32 * 4.0 + r as f32)));
    let wkv: [[[f32; 8]; 4]; 2] =
        core::array::from_fn(|h| core::array::from_fn(|r| fill(50.0 + h as f32 * 4.0 + r as f32)));
    let wo: [[[f32; 4]; 4]; 8] =
        core::array::from_fn(|o| core::array::from_fn(|h| fill(90.0 + o as f32 + h as f32)));
    let block = CausalSelfAttention::<f32, 8, 4, 2, 4>::new(DecoderWeights {
        w_q: &wq,
        b_q: None,
        w_k: &wkv,
        b_k: None,
        w_v: &wkv,
        b_v: None,
        w_o: &wo,
        b_o: None,
    });
    let mha_wo: [[[f32; 4]; 4]; 8] = wo;
    let mha = MultiHeadAttention::<f32, 4, 8, 8, 4, 4, 8>::new(MhaWeights {
        w_q: &wq,
        b_q: None,
        w_k: &wq,
        b_k: None,
        w_v: &wq,
        b_v: None,
        w_o: &mha_wo,
        b_o: None,
    });
    let in_w: [[[f32; 8]; 8]; 3] =
        core::array::from_fn(|p| core::array::from_fn(|r| fill(p as f32 * 8.0 + r as f32)));
    let out_w: [[f32; 8]; 8] = core::array::from_fn(|r| fill(200.0 + r as f32));
    let packed = PackedMultiheadAttention::<f32, 8, 2, 4>::new(PackedMhaWeights {
        in_proj_weight: &in_w,
        in_proj_bias: None,
        out_proj_weight: &out_w,
        out_proj_bias: None,
    });
    let w_qkv: [[f32; 8]; 12] = core::array::from_fn(|r| fill(300.0 + r as f32));
    let ln_q = [1.0f32; 8];
    let ln_k = [1.0f32; 2];
    let zq = [0.0f32; 8];
    let zk = [0.0f32; 2];
    let mpt = MptAttention::<f32, 8, 4, 2, 12>::new(
        MptWeights {
            w_qkv: &w_qkv,
            b_qkv: None,
            w_out: &out_w,
            b_out: None,
            qk_ln: Some(MptQkNorm {
                q_weight: &ln_q,
                q_bias: &zq,
                k_weight: &ln_k,
                k_bias: &zk,
            }),
        },
        MptConfig {
            clip_qkv: Some(0.5),
            softmax_scale: None,
        },
    );
    let x3: [[f32; 8]; 3] = q;
    let pad = [true, true, false];

    // Outputs, scratch and caches (caller-owned, on the stack / in a static).
    let mut out = [[0.0f32; 6]; 3];
    let mut w = [[0.0f32; 5]; 3];
    let mut gout = [[[0.0f32; 4]; 4]; 3];
    let mut gs = [[0.0f32; 5]; 3];
    let mut wavg = [0.0f32; 15];
    let mut cache = CACHE0.clone();
    let mut bounded = KvCache::<f32, 2, 4, 16>::new();
    let mut ds3 = DecoderScratch::<f32, 3, 4, 2, 4, 11>::new();
    let mut ds1 = DecoderScratch::<f32, 1, 4, 2, 4, 9>::new();
    let mut ds3b = DecoderScratch::<f32, 3, 4, 2, 4, 19>::new();
    let mut bout3 = [[0.0f32; 8]; 3];
    let mut bout1 = [[0.0f32; 8]; 1];
    let mut ms = MhaScratch::<f32, 3, 3, 4, 4, 4>::new();
    let mut ps = MhaScratch::<f32, 3, 3, 2, 4, 4>::new();
    let mut mpt_s = DecoderScratch::<f32, 3, 4, 1, 2, 3>::new();
    let mut mpt_sc = DecoderScratch::<f32, 3, 4, 1, 2, 11>::new();
    let mut mpt_cache = KvCache::<f32, 1, 2, 8>::new();
    let mut beams = [
        KvCache::<f32, 2, 4, 8>::new(),
        KvCache::new(),
        KvCache::new(),
    ];
    let mut views_out = [0.0f32; 18];
    let mut views_w = [0.0f32; 15];

    let n = allocations_during(|| {
        let o = AttnOptions::new();
        sdpa(&q, &k, &v, &mut out, &mut w, &o).unwrap();
        sdpa(
            &q,
            &k,
            &v,
            &mut out,
            &mut w,
            &o.allow(MatRef::from_array(&mask)),
        )
        .unwrap();
        sdpa(
            &q,
            &k,
            &v,
            &mut out,
            &mut w,
            &o.block(MatRef::from_array(&mask))
                .bias(MatRef::from_array(&bias)),
        )
        .unwrap();
        sdpa_with::<Scalar, _, 3, 5, 8, 6>(&q, &k, &v, &mut out, &mut w, &o.causal().window(2))
            .unwrap();
        sdpa(
            &q,
            &k,
            &v,
            &mut out,
            &mut w,
            &o.causal().relative(&shaw).score_bias(&hook),
        )
        .unwrap();
        sdpa_views(
            MatRef::from_array(&q),
            MatRef::from_array(&k),
            MatRef::from_array(&v),
            MatMut::new(&mut views_out, 3, 6).unwrap(),
            &mut views_w,
            &o,
        )
        .unwrap();
        gqa(
            &gq,
            &gk,
            &gk,
            &mut gout,
            &mut gs,
            WeightsOut::Averaged(&mut wavg),
            &o.causal(),
        )
        .unwrap();

        mha.forward(&x3, &x3, &x3, &mut bout3, &mut ms, WeightsOut::None, &o)
            .unwrap();
        packed
            .forward(
                &x3,
                &x3,
                &x3,
                Some(&[false, true, false]),
                &mut bout3,
                &mut ps,
                WeightsOut::None,
                &o,
            )
            .unwrap();

        for _ in 0..4 {
            block
                .forward(&x3, &mut cache, &NoRotation, &mut ds3, &mut bout3, &o)
                .unwrap();
            block
                .forward(&[x3[0]], &mut cache, &NoRotation, &mut ds1, &mut bout1, &o)
                .unwrap();
        }
        block
            .forward(&x3, &mut bounded, &NoRotation, &mut ds3b, &mut bout3, &o)
            .unwrap();
        block
            .project(&[x3[1]], &mut ds1.q, &mut ds1.k, &mut ds1.v)
            .unwrap();
        bounded.append_chunk(&ds1.k, &ds1.v).unwrap();
        attend_cache(
            &ds1.q,
            3,
            &bounded,
            None,
            &mut ds1.ctx,
            &mut ds1.scores,
            WeightsOut::None,
            &o,
        )
        .unwrap();
        block.out_proj(&ds1.ctx, &mut bout1).unwrap();
        bounded.truncate(2).unwrap();
        assert!(
            bounded
                .append_chunk(&[ds1.k[0]; 15], &[ds1.v[0]; 15])
                .is_err()
        );

        mpt.forward(
            &x3,
            &mut mpt_s,
            &mut bout3,
            WeightsOut::None,
            &o.causal().key_allow(&pad),
        )
        .unwrap();
        mpt.forward_cached(
            &x3,
            &mut mpt_cache,
            &mut mpt_sc,
            &mut bout3,
            WeightsOut::None,
            &o.score_bias(&hook),
        )
        .unwrap();

        for (i, b) in beams.iter_mut().enumerate() {
            b.append(&[[i as f32; 4]; 2], &[[i as f32; 4]; 2]).unwrap();
        }
        reorder_beams(&mut beams, &[2, 0, 0]).unwrap();
        reorder_beams(&mut beams, &[1, 2, 0]).unwrap();
        let (a, b) = beams.split_at_mut(1);
        a[0].copy_from(&b[0]).unwrap();
        cache.reset();
    });
    assert_eq!(n, 0, "the no_std attention paths allocated {n} times");
    assert!(out.as_flattened().iter().all(|x| x.is_finite()));
    assert!(bout3.as_flattened().iter().all(|x| x.is_finite()));
}

/// The counter works: a `Vec` is seen.
#[test]
fn the_counter_counts() {
    let n = allocations_during(|| {
        let v: Vec<u8> = Vec::with_capacity(16);
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}
