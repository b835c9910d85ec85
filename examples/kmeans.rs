//! k-means on Fisher's iris (150 flowers, 4 measurements, 3 species): Lloyd's
//! algorithm with k-means++ restarts, one run from given centres, an online
//! (MacQueen) pass over a stream, and a scatter plot of the clusters on the
//! first two principal components.
//!
//! ```text
//! cargo run --release --example kmeans [-- OUT.svg]
//! ```
//!
//! 1. `KMeans::<f64, 3, 4>` on the const face, 10 k-means++ restarts from a
//!    seeded generator: inertia (scikit-learn's optimum is 78.8514), cluster
//!    sizes and a clusters × species table.
//! 2. `kmeans_views` from the centres `x[0]`, `x[50]`, `x[100]` (one flower of
//!    each species): scikit-learn's `KMeans(init=those, n_init=1)` reaches
//!    inertia 78.851441426146 in 4 iterations.
//! 3. `kmeans_online_update`: the same three seeds, then every point once in
//!    a shuffled order, one update per point, as a device that sees one
//!    sample at a time would do it.
//! 4. An SVG scatter (default `target/kmeans_iris.svg`) of the points on the
//!    first two principal components, computed here by power iteration on
//!    the 4 × 4 covariance matrix, coloured by cluster, centres as crosses.

#[path = "common/svg.rs"]
mod svg;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use constml::ml::{
    KMeans, KMeansConfig, KMeansInit, KMeansScratch, kmeans_online_update, kmeans_predict_views,
    kmeans_scratch_len, kmeans_views,
};
use constml::rand_core::{Rng, SeedableRng};
use constml::{MatMut, MatRef};
use rand_xoshiro::Xoshiro256PlusPlus;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/iris.csv");
const HEADER: &str = "sepal_length,sepal_width,petal_length,petal_width,species";
const SPECIES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// Points, clusters, features.
const N: usize = 150;
const K: usize = 3;
const D: usize = 4;
/// Seeds k-means++.
const SEED: u64 = 7;
/// Seeds the order in which the online pass sees the points.
const STREAM_SEED: u64 = 11;
/// The given starting centres: the first flower of each species.
const GIVEN: [usize; K] = [0, 50, 100];

type Points = Box<[[f64; D]; N]>;

/// The measurements and the species index of each flower.
fn load(path: &str) -> Result<(Points, Vec<usize>), Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == HEADER => {}
        other => {
            return Err(format!(
                "{path}: expected the header `{HEADER}`, found {:?}",
                other.unwrap_or("nothing")
            )
            .into());
        }
    }
    let (mut x, mut species) = (Vec::new(), Vec::new());
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != D + 1 {
            return Err(format!(
                "{path}:{line_no}: expected {} fields, found {}",
                D + 1,
                fields.len()
            )
            .into());
        }
        let mut row = [0.0f64; D];
        for (j, v) in row.iter_mut().enumerate() {
            *v = fields[j]
                .parse()
                .map_err(|e| format!("{path}:{line_no}: field {} = {:?}: {e}", j + 1, fields[j]))?;
            if !v.is_finite() {
                return Err(format!("{path}:{line_no}: field {} is not finite", j + 1).into());
            }
        }
        let s: usize = fields[D]
            .parse()
            .ok()
            .filter(|&s| s < SPECIES.len())
            .ok_or_else(|| format!("{path}:{line_no}: species {:?} is not 0, 1 or 2", fields[D]))?;
        x.push(row);
        species.push(s);
    }
    let found = x.len();
    let x: Points = x
        .into_boxed_slice()
        .try_into()
        .map_err(|_| format!("{path}: expected {N} data rows, found {found}"))?;
    Ok((x, species))
}

/// `‖a − b‖²`.
fn sq_dist(a: &[f64; D], b: &[f64; D]) -> f64 {
    a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum()
}

/// Prints the clusters × species counts.
fn contingency(labels: &[usize], species: &[usize]) {
    let mut table = [[0usize; 3]; K];
    for (&l, &s) in labels.iter().zip(species) {
        table[l][s] += 1;
    }
    print!("{:>8} {:>5}", "cluster", "size");
    for name in SPECIES {
        print!(" {name:>10}");
    }
    println!();
    for (c, row) in table.iter().enumerate() {
        print!("{c:>8} {:>5}", row.iter().sum::<usize>());
        for v in row {
            print!(" {v:>10}");
        }
        println!();
    }
}

/// The mean, the first two principal axes (unit vectors) and their
/// variances, and the total variance, of the rows of `x`: power iteration
/// on the covariance matrix, deflated once for the second axis.
fn principal_axes(x: &[[f64; D]]) -> ([f64; D], [[f64; D]; 2], [f64; 2], f64) {
    let n = x.len() as f64;
    let mut mean = [0.0; D];
    for p in x {
        for j in 0..D {
            mean[j] += p[j] / n;
        }
    }
    let mut cov = [[0.0; D]; D];
    for p in x {
        for a in 0..D {
            for b in 0..D {
                cov[a][b] += (p[a] - mean[a]) * (p[b] - mean[b]) / (n - 1.0);
            }
        }
    }
    let total = (0..D).map(|j| cov[j][j]).sum();
    let mut axes = [[0.0; D]; 2];
    let mut vars = [0.0; 2];
    for k in 0..2 {
        // Any start not orthogonal to the wanted axis converges to it.
        let mut v = [1.0, 0.5, 0.25, 0.125];
        for _ in 0..1000 {
            let mut w = [0.0; D];
            for a in 0..D {
                w[a] = (0..D).map(|b| cov[a][b] * v[b]).sum();
            }
            let norm = w.iter().map(|t| t * t).sum::<f64>().sqrt();
            w.iter_mut().for_each(|t| *t /= norm);
            let moved = w
                .iter()
                .zip(&v)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            v = w;
            if moved < 1e-13 {
                break;
            }
        }
        // Sign: largest component positive, so the picture is reproducible.
        let big = (0..D).fold(0, |m, j| if v[j].abs() > v[m].abs() { j } else { m });
        if v[big] < 0.0 {
            v.iter_mut().for_each(|t| *t = -*t);
        }
        let lambda: f64 = (0..D)
            .map(|a| v[a] * (0..D).map(|b| cov[a][b] * v[b]).sum::<f64>())
            .sum();
        // Deflate: remove this axis's share so the next largest comes out.
        for a in 0..D {
            for b in 0..D {
                cov[a][b] -= lambda * v[a] * v[b];
            }
        }
        axes[k] = v;
        vars[k] = lambda;
    }
    (mean, axes, vars, total)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kmeans: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/kmeans_iris.svg".into()),
    );
    let (x, species) = load(DATA)?;
    println!("iris: {N} flowers, {D} features, species 0..2 = {SPECIES:?}");

    // 1. k-means++ with 10 restarts, const face.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let km = KMeans::<f64, K, D>::new().n_init(10);
    let mut centers = [[0.0; D]; K];
    let mut labels = [0usize; N];
    let mut scratch = Box::new(KMeansScratch::new());
    let t = Instant::now();
    let fit = km.fit(
        &x,
        KMeansInit::PlusPlus,
        &mut rng,
        &mut centers,
        &mut labels,
        &mut scratch,
    )?;
    let pp_time = t.elapsed();
    println!(
        "\nLloyd, k-means++ seeding, 10 restarts (seed {SEED}, {:.2} ms, scratch {} bytes):",
        pp_time.as_secs_f64() * 1e3,
        KMeansScratch::<f64, N, K, D>::BYTES
    );
    println!(
        "  inertia {:.4} (scikit-learn's optimum: 78.8514), kept run {} of 10 after {} iterations",
        fit.inertia,
        fit.run + 1,
        fit.n_iter
    );
    contingency(&labels, &species);

    // 2. One run from given centres, view face.
    let init: Vec<f64> = GIVEN.iter().flat_map(|&i| x[i]).collect();
    let mut given_centers = vec![0.0; K * D];
    let mut given_labels = vec![0usize; N];
    let mut view_scratch = vec![0.0; kmeans_scratch_len(N, K, D)];
    let mut label_scratch = vec![0usize; N];
    let given = kmeans_views(
        MatRef::from_array(&x),
        KMeansInit::Given(MatRef::new(&init, K, D)?),
        &KMeansConfig::default(),
        &mut rng, // not drawn from with given centres
        MatMut::new(&mut given_centers, K, D)?,
        &mut given_labels,
        &mut view_scratch,
        &mut label_scratch,
    )?;
    println!(
        "\nLloyd from the centres x[{}], x[{}], x[{}]:",
        GIVEN[0], GIVEN[1], GIVEN[2]
    );
    println!(
        "  inertia {:.12} in {} iterations (scikit-learn: 78.851441426146 in 4)",
        given.inertia, given.n_iter
    );
    let lloyd: [[f64; D]; K] =
        std::array::from_fn(|c| std::array::from_fn(|j| given_centers[c * D + j]));

    // 3. Online (MacQueen): seeded with the same three flowers (count 1
    //    each), then all 150 points once in a shuffled order; the three seed
    //    flowers come round again in the stream like any other point.
    let mut online: [[f64; D]; K] = GIVEN.map(|i| x[i]);
    let mut counts = [1u64; K];
    let mut order: Vec<usize> = (0..N).collect();
    let mut stream_rng = Xoshiro256PlusPlus::seed_from_u64(STREAM_SEED);
    for i in (1..N).rev() {
        let j = ((u128::from(stream_rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
    for &i in &order {
        kmeans_online_update(MatMut::from_array(&mut online), &mut counts, &x[i])?;
    }
    let mut online_labels = vec![0usize; N];
    let online_inertia = kmeans_predict_views(
        MatRef::from_array(&x),
        MatRef::from_array(&online),
        &mut online_labels,
    )?;
    // The online centres need not keep the seeds' order (an early stream
    // point can pull a centre over to another species), so pair them with
    // Lloyd's centres by the permutation that puts them closest.
    let perms = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let cost = |p: &[usize; K]| {
        (0..K)
            .map(|c| sq_dist(&online[c], &lloyd[p[c]]))
            .sum::<f64>()
    };
    let pair = perms
        .iter()
        .min_by(|a, b| cost(a).total_cmp(&cost(b)))
        .copied()
        .unwrap_or([0, 1, 2]);
    let agree = online_labels
        .iter()
        .zip(&given_labels)
        .filter(|&(&o, &l)| pair[o] == l)
        .count();
    println!(
        "\nonline (MacQueen), one pass over the {N} points in a shuffled order (seed {STREAM_SEED}):"
    );
    println!(
        "{:>6} {:>6} {:>35}   {:>35}",
        "online", "Lloyd", "online centre", "Lloyd's centre from the same seeds"
    );
    let fmt = |v: &[f64; D]| {
        v.iter()
            .map(|t| format!("{t:>8.4}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for c in 0..K {
        println!(
            "{c:>6} {:>6} {}   {}",
            pair[c],
            fmt(&online[c]),
            fmt(&lloyd[pair[c]])
        );
    }
    println!("  points per online centre {counts:?} (its seed, plus the streamed points it won)");
    println!(
        "  inertia of the nearest-centre labels {online_inertia:.4} vs Lloyd's {:.4}; \
         the paired labels agree on {agree} of {N} points",
        given.inertia
    );

    // 4. Scatter on the first two principal components.
    let (mean, axes, vars, total) = principal_axes(&x[..]);
    let project = |p: &[f64; D]| -> (f64, f64) {
        let d: Vec<f64> = (0..D).map(|j| p[j] - mean[j]).collect();
        let dot = |a: &[f64; D]| (0..D).map(|j| a[j] * d[j]).sum::<f64>();
        (dot(&axes[0]), dot(&axes[1]))
    };
    println!(
        "\nprincipal components: PC1 {:.1} %, PC2 {:.1} % of the variance",
        100.0 * vars[0] / total,
        100.0 * vars[1] / total
    );
    let pts: Vec<(f64, f64)> = x.iter().map(project).collect();
    let (xs, ys): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
    let range = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let ((x0, x1), (y0, y1)) = (range(&xs), range(&ys));
    let mut plot = svg::Plot::new(
        &format!(
            "Iris: k-means (K = 3, inertia {:.4}) on the first two principal components",
            fit.inertia
        ),
        svg::Axis::linear(
            x0,
            x1,
            &format!("PC 1 ({:.1} % of variance)", 100.0 * vars[0] / total),
        ),
        // Extra room at the top for the legend.
        svg::Axis::linear(
            y0,
            y1 + 0.45 * (y1 - y0),
            &format!("PC 2 ({:.1} % of variance)", 100.0 * vars[1] / total),
        ),
    );
    let colors = ["#1f77b4", "#ff7f0e", "#2ca02c"];
    for (&(px, py), &l) in pts.iter().zip(&labels) {
        plot.dot(px, py, colors[l]);
    }
    for (c, centre) in centers.iter().enumerate() {
        let (px, py) = project(centre);
        plot.cross(px, py, colors[c]);
        let size = labels.iter().filter(|&&l| l == c).count();
        let mut by_species = [0usize; 3];
        for (&l, &s) in labels.iter().zip(&species) {
            if l == c {
                by_species[s] += 1;
            }
        }
        let top = (0..3).fold(0, |m, s| if by_species[s] > by_species[m] { s } else { m });
        plot.legend(
            &format!("cluster {c}: {size} points, mostly {}", SPECIES[top]),
            colors[c],
            svg::Mark::Dot,
        );
    }
    plot.legend("cluster centres", "#333333", svg::Mark::Cross);
    plot.write(&out)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!("\nwrote {}", out.display());
    Ok(())
}
