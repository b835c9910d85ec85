//! Writes `benches/REPORT.md` and the SVG plots beside it from the criterion
//! results of one run (`target/criterion/**/new/{benchmark,estimates}.json`).
//! Run by `benches/report`, which runs the benches first; it passes the
//! machine's measured FMA peak and the run's flags in the environment.
//!
//! No JSON or plotting dependency: the few numbers needed are read by key,
//! and the plots are written as SVG by hand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// One measurement: median nanoseconds and the declared throughput.
#[derive(Clone, Debug)]
struct Row {
    ns: f64,
    elements: Option<f64>,
    bytes: Option<f64>,
}

/// `group → parameter → function → row`, parameters in numeric order where
/// they are numbers.
type Results = BTreeMap<String, BTreeMap<Key, BTreeMap<String, Row>>>;

/// A parameter: numbers sort as numbers, the rest as text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u64, String);

impl Key {
    fn new(s: &str) -> Self {
        let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
        Key(digits.parse().unwrap_or(u64::MAX), s.to_string())
    }
    fn num(&self) -> f64 {
        self.0 as f64
    }
}

/// The string value of `"key": "…"` in `json`.
fn string_of(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = &json[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with("null") {
        return None;
    }
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// The number after `"key":` in `json`, searching from `"within"` if given.
fn number_of(json: &str, within: Option<&str>, key: &str) -> Option<f64> {
    let start = match within {
        Some(w) => json.find(&format!("\"{w}\""))?,
        None => 0,
    };
    let json = &json[start..];
    let at = json.find(&format!("\"{key}\""))?;
    let rest = json[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn collect(dir: &Path, out: &mut Results) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "new") {
                read_one(&p, out);
            } else {
                collect(&p, out);
            }
        }
    }
}

fn read_one(dir: &Path, out: &mut Results) {
    let (Ok(b), Ok(e)) = (
        fs::read_to_string(dir.join("benchmark.json")),
        fs::read_to_string(dir.join("estimates.json")),
    ) else {
        return;
    };
    let (Some(group), Some(ns)) = (
        string_of(&b, "group_id"),
        number_of(&e, Some("median"), "point_estimate"),
    ) else {
        return;
    };
    let (mut group, mut func) = (group, string_of(&b, "function_id").unwrap_or_default());
    let mut param = string_of(&b, "value_str").unwrap_or_default();
    // `bench_function("name/size/backend")`: the group holds all three parts.
    if func.is_empty() && param.is_empty() {
        let parts: Vec<&str> = group.split('/').collect();
        if parts.len() >= 2 {
            func = parts[parts.len() - 1].to_string();
            if parts.len() >= 3 {
                param = parts[parts.len() - 2].to_string();
                group = parts[..parts.len() - 2].join("/");
            } else {
                group = parts[0].to_string();
            }
        }
    }
    let row = Row {
        ns,
        elements: number_of(&b, Some("throughput"), "Elements"),
        bytes: number_of(&b, Some("throughput"), "Bytes"),
    };
    out.entry(group)
        .or_default()
        .entry(Key::new(&param))
        .or_default()
        .insert(func, row);
}

/// Time with a unit that keeps 3–4 significant digits.
fn time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn gflops(r: &Row) -> Option<f64> {
    r.elements.map(|e| e / r.ns)
}

fn gbps(r: &Row) -> Option<f64> {
    r.bytes.map(|b| b / r.ns)
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// A line chart: `series` of `(name, colour, points)`, axes log-scaled on
/// request.
fn chart(title: &str, xl: &str, yl: &str, series: &[Series<'_>], logx: bool, logy: bool) -> String {
    let (w, h, l, r, t, b) = (760.0, 440.0, 70.0, 190.0, 40.0, 50.0);
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    let f = |v: f64, log: bool| if log { v.max(1e-30).log10() } else { v };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in &pts {
        x0 = x0.min(f(x, logx));
        x1 = x1.max(f(x, logx));
        y0 = y0.min(f(y, logy));
        y1 = y1.max(f(y, logy));
    }
    if !logy {
        y0 = 0.0;
    }
    if logy {
        y0 = y0.floor();
        y1 = y1.ceil();
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let px = |x: f64| l + (f(x, logx) - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| h - b - (f(y, logy) - y0) / (y1 - y0) * (h - t - b);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>"#,
        (w - r + l) / 2.0
    );
    // Axes and ticks.
    let _ = writeln!(
        s,
        r#"<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        h - b,
        w - r,
        h - b
    );
    let _ = writeln!(
        s,
        r#"<line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="black"/>"#,
        h - b
    );
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for &x in &xs {
        let _ = writeln!(
            s,
            r#"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="black"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"#,
            px(x),
            h - b,
            h - b + 4.0,
            h - b + 18.0,
            x
        );
    }
    let ticks: Vec<f64> = if logy {
        (y0 as i32..=y1 as i32).map(f64::from).collect()
    } else {
        (0..=5).map(|i| y0 + (y1 - y0) * i as f64 / 5.0).collect()
    };
    for v in ticks {
        let y = h - b - (v - y0) / (y1 - y0) * (h - t - b);
        let label = if logy {
            format!("{}", 10f64.powf(v))
        } else {
            format!("{v:.0}")
        };
        let _ = writeln!(
            s,
            r##"<line x1="{l}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
            w - r,
            l - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{xl}</text>"#,
        (w - r + l) / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{yl}</text>"#,
        (h - b + t) / 2.0,
        (h - b + t) / 2.0
    );
    for (i, (name, colour, p)) in series.iter().enumerate() {
        let line: Vec<String> = p
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            line.join(" ")
        );
        for &(x, y) in p {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                px(x),
                py(y)
            );
        }
        let ly = t + 10.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{2}" y="{3}">{name}</text>"#,
            w - r + 12.0,
            w - r + 36.0,
            w - r + 42.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One line of a chart: its name, colour and `(x, y)` points.
type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

const COLOURS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// The backend labels a benchmark id can carry in any of its parts.
const BACKENDS: [&str; 4] = ["scalar", "simd", "good_scalar", "natural"];

/// Every library benchmark (not `peers_…`) split into `(bench, case)` and
/// its backend columns: the parts of `function/parameter` that name a
/// backend are the column, the rest the case. `natural` wins over the
/// backend beside it (conv2d's `natural/scalar` is the plain loop).
fn cases(res: &Results) -> Vec<(String, String, BTreeMap<String, Row>)> {
    let mut out: BTreeMap<(String, String), BTreeMap<String, Row>> = BTreeMap::new();
    for (group, params) in res {
        if group.starts_with("peers_") {
            continue;
        }
        for (k, funcs) in params {
            for (f, r) in funcs {
                let parts: Vec<&str> = f
                    .split('/')
                    .chain(k.1.split('/'))
                    .filter(|p| !p.is_empty())
                    .collect();
                let lower: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
                let backend = if lower.iter().any(|p| p == "natural") {
                    Some("natural".to_string())
                } else {
                    lower
                        .iter()
                        .find(|p| BACKENDS.contains(&p.as_str()))
                        .cloned()
                };
                let Some(backend) = backend else { continue };
                let case: Vec<&str> = parts
                    .iter()
                    .zip(&lower)
                    .filter(|(_, l)| !BACKENDS.contains(&l.as_str()))
                    .map(|(p, _)| *p)
                    .collect();
                let case = if case.is_empty() {
                    "–".to_string()
                } else {
                    case.join("/")
                };
                out.entry((group.clone(), case))
                    .or_default()
                    .insert(backend, r.clone());
            }
        }
    }
    out.into_iter().map(|((g, c), m)| (g, c, m)).collect()
}

/// Table rows for library benchmarks that name no backend.
fn others(res: &Results) -> Vec<String> {
    let mut v = Vec::new();
    for (group, params) in res {
        if group.starts_with("peers_") {
            continue;
        }
        for (k, funcs) in params {
            for (f, r) in funcs {
                let id = [f.as_str(), k.1.as_str()]
                    .iter()
                    .filter(|p| !p.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("/");
                if id
                    .split('/')
                    .any(|p| BACKENDS.contains(&p.to_lowercase().as_str()))
                {
                    continue;
                }
                v.push(format!("| {group} | {id} | {} |", time(r.ns)));
            }
        }
    }
    v
}

/// One size's rows: function name → measurement.
type Funcs = BTreeMap<String, Row>;

/// `(size, value(rows))` for each size of a group whose number lies in
/// `sizes` and where `value` is defined.
fn per_size(
    gr: &BTreeMap<Key, Funcs>,
    sizes: std::ops::RangeInclusive<u64>,
    value: impl Fn(&Funcs) -> Option<f64>,
) -> Vec<(String, f64)> {
    gr.iter()
        .filter(|(k, _)| sizes.contains(&k.0))
        .filter_map(|(k, f)| Some((k.1.clone(), value(f)?)))
        .collect()
}

/// The smallest value and its size.
fn lowest(v: &[(String, f64)]) -> Option<(String, f64)> {
    v.iter().min_by(|a, b| a.1.total_cmp(&b.1)).cloned()
}

/// The issue's targets, each as measured in this run.
fn headline(res: &Results, peak: f64) -> String {
    let mut h = String::new();
    let _ = writeln!(h, "## Targets\n");
    let _ = writeln!(h, "| target | measured | met |");
    let _ = writeln!(h, "|---|---|:---:|");
    let mut row = |what: &str, measured: String, met: Option<bool>| {
        let m = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(h, "| {what} | {measured} | {m} |");
    };
    let g = |grp: &str, func: &str, param: &str| -> Option<Row> {
        res.get(grp)?.get(&Key::new(param))?.get(func).cloned()
    };
    // gemm against matrixmultiply and nalgebra, and against the peak.
    let peer_over_us =
        |peer: &'static str| move |f: &Funcs| Some(f.get(peer)?.ns / f.get("constml")?.ns);
    let of_peak = |pk: f64| move |f: &Funcs| Some(gflops(f.get("constml")?)? / pk);
    let all = |v: &[(String, f64)]| {
        v.iter()
            .map(|(n, r)| format!("{n}: {r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(gr) = res.get("peers_gemm_f32") {
        let v = per_size(gr, 0..=u64::MAX, peer_over_us("matrixmultiply"));
        if let Some((n, r)) = lowest(&v) {
            let m = format!("lowest {r:.2}× at n = {n} ({})", all(&v));
            row(
                "gemm f32 ≥ 1.0× matrixmultiply, n = 16…512",
                m,
                Some(r >= 1.0),
            );
        }
        if let Some((n, r)) = lowest(&per_size(gr, 128..=512, of_peak(peak))) {
            let m = format!("lowest {:.0} % at n = {n}", 100.0 * r);
            row("gemm f32 ≥ 80 % of peak at n = 128…512", m, Some(r >= 0.8));
        }
        for (lay, what) in [
            ("constml_bt", "A·Bᵀ as fast as A·B (lowest ratio over n)"),
            ("constml_at", "Aᵀ·B as fast as A·B (lowest ratio over n)"),
        ] {
            let v = per_size(gr, 0..=u64::MAX, |f| {
                Some(f.get("constml")?.ns / f.get(lay)?.ns)
            });
            if let Some((_, r)) = lowest(&v) {
                row(what, format!("{r:.2}×"), Some(r >= 0.9));
            }
        }
    }
    if let Some(gr) = res.get("peers_gemm_shapes_f32") {
        for (n, r) in per_size(gr, 0..=u64::MAX, peer_over_us("matrixmultiply")) {
            row(
                &format!("gemm {n} ≥ 1.0× matrixmultiply"),
                format!("{r:.2}×"),
                Some(r >= 1.0),
            );
        }
    }
    if let Some(gr) = res.get("peers_gemm_const_f32") {
        let v = per_size(gr, 0..=u64::MAX, peer_over_us("nalgebra_smatrix"));
        if let Some((n, r)) = lowest(&v) {
            let m = format!("lowest {r:.2}× at n = {n} ({})", all(&v));
            row(
                "const gemm ≥ 1.0× nalgebra SMatrix, n = 16…64",
                m,
                Some(r >= 1.0),
            );
        }
    }
    if let Some(gr) = res.get("peers_gemm_f64") {
        if let Some((n, r)) = lowest(&per_size(gr, 0..=u64::MAX, peer_over_us("matrixmultiply"))) {
            let m = format!("lowest {r:.2}× at n = {n}");
            row("gemm f64 ≥ 1.0× matrixmultiply (dgemm)", m, Some(r >= 1.0));
        }
        if let Some((_, r)) = lowest(&per_size(gr, 128..=512, of_peak(peak / 2.0))) {
            let m = format!("lowest {:.0} %", 100.0 * r);
            row(
                "gemm f64 ≥ 80 % of the f64 peak at n = 128…512",
                m,
                Some(r >= 0.8),
            );
        }
    }
    if let (Some(s), Some(v)) = (g("dot_f32", "scalar", "1024"), g("dot_f32", "simd", "1024")) {
        let good = g("dot_f32", "good_scalar", "1024").map_or(String::new(), |gs| {
            format!("; good scalar / Simd {:.1}×", gs.ns / v.ns)
        });
        row(
            "dot 1024: Simd ≥ 10× Scalar",
            format!("{:.1}×{good}", s.ns / v.ns),
            Some(s.ns / v.ns >= 10.0),
        );
    }
    if let Some(f) = res
        .get("peers_attention_decode_f32")
        .and_then(|gr| gr.get(&Key::new("1024")))
        && let (Some(c), Some(r)) = (f.get("constml"), f.get("plain_read"))
    {
        row(
            "attention decode 12 × 64, cache 1024: ≥ 85 % of a plain read",
            format!(
                "{:.0} % ({} against {})",
                100.0 * r.ns / c.ns,
                time(c.ns),
                time(r.ns)
            ),
            Some(r.ns / c.ns >= 0.85),
        );
    }
    let all = cases(res);
    let case = |grp: &str, cs: &str| {
        all.iter()
            .find(|(g, c, _)| g == grp && c == cs)
            .map(|x| x.2.clone())
    };
    for (cs, what) in [
        ("3to16_32x32", "conv2d 3→16 on 32×32"),
        ("16to32_16x16", "conv2d 16→32 on 16×16"),
    ] {
        if let (Some(nat), Some(auto)) = (case("conv2d", cs), case("conv2d", &format!("{cs}/auto")))
            && let (Some(n), Some(v)) = (nat.get("natural"), auto.get("simd"))
        {
            row(
                &format!("{what} forward ≥ 4× the plain loop"),
                format!("{:.1}×", n.ns / v.ns),
                Some(n.ns / v.ns >= 4.0),
            );
        }
    }
    if let (Some(nat), Some(step)) = (case("lstm", "step"), case("lstm", "step"))
        && let (Some(n), Some(v)) = (nat.get("natural"), step.get("simd"))
    {
        row(
            "LSTM step ≥ 4× the plain loop",
            format!("{:.1}×", n.ns / v.ns),
            Some(n.ns / v.ns >= 4.0),
        );
    }
    if let Some(c) = case("norm", "layer_norm_768/forward")
        && let (Some(s), Some(v)) = (c.get("scalar"), c.get("simd"))
    {
        row(
            "LayerNorm 768 forward: Simd ≥ 4× Scalar",
            format!("{:.1}×", s.ns / v.ns),
            Some(s.ns / v.ns >= 4.0),
        );
    }
    if let Some(c) = case("softmax_f32", "768")
        && let (Some(s), Some(v)) = (c.get("scalar"), c.get("simd"))
    {
        row(
            "softmax 768: Simd ≥ 4× Scalar",
            format!("{:.1}×", s.ns / v.ns),
            Some(s.ns / v.ns >= 4.0),
        );
    }
    if let Some(f) = res
        .get("peers_top_p_f32")
        .and_then(|gr| gr.get(&Key::new("50257")))
        && let (Some(c), Some(s)) = (f.get("constml"), f.get("softmax_simd"))
    {
        row(
            "top-p at V = 50 257 within 2× one Simd softmax",
            format!(
                "{:.2}× ({} against {})",
                c.ns / s.ns,
                time(c.ns),
                time(s.ns)
            ),
            Some(c.ns / s.ns <= 2.0),
        );
    }
    if let Some(c) = case("kmeans_lloyd", "10000x16_k8") {
        let sk: Option<f64> = std::env::var("SKLEARN_US")
            .ok()
            .and_then(|v| v.parse().ok());
        match (c.get("simd"), sk) {
            (Some(v), Some(us)) => row(
                "k-means Lloyd iteration 10 000 × 16, K = 8: faster than scikit-learn (one thread)",
                format!(
                    "{} against {us:.1} µs ({}): {:.2}×",
                    time(v.ns),
                    std::env::var("SKLEARN_VERSION").unwrap_or_default(),
                    us * 1e3 / v.ns
                ),
                Some(v.ns < us * 1e3),
            ),
            (Some(v), None) => row(
                "k-means Lloyd iteration 10 000 × 16, K = 8",
                format!("{} (scikit-learn not timed: no Python sklearn)", time(v.ns)),
                None,
            ),
            _ => {}
        }
    }
    h.push('\n');
    h
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let mut res = Results::new();
    collect(&root.join("target/criterion"), &mut res);
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "unknown".into());
    let peak: f64 = env("PEAK_GFLOPS").parse().unwrap_or(f64::NAN);
    let mut md = String::new();
    let _ = writeln!(md, "# constml benchmark report\n");
    let _ = writeln!(
        md,
        "Written by `benches/report` on {}: every figure below comes from that one run.\n",
        env("REPORT_DATE")
    );
    let _ = writeln!(md, "- machine: {}", env("REPORT_CPU"));
    let _ = writeln!(md, "- caches: {}", env("REPORT_CACHES"));
    let _ = writeln!(md, "- compiler: {}", env("REPORT_RUSTC"));
    let _ = writeln!(
        md,
        "- flags: `{}`, release profile, one thread",
        env("REPORT_FLAGS")
    );
    let _ = writeln!(
        md,
        "- criterion: {}; each figure is the median",
        env("REPORT_CRITERION")
    );
    let _ = writeln!(
        md,
        "- measured f32 FMA peak of one core (`cargo run --release --example peak`): **{peak:.1} GFLOP/s**"
    );
    let _ = writeln!(md, "- f64 peak is half that: {:.1} GFLOP/s\n", peak / 2.0);
    let _ = writeln!(
        md,
        "Absolute figures move between machines of the same class and with the load of a shared host; the ratios are what carries over (each is measured in this run).\n"
    );
    md.push_str("<!-- headline -->");

    // --- gemm -------------------------------------------------------------
    let mut gemm_series: Vec<Series<'_>> = Vec::new();
    for (ty, pk) in [("f32", peak), ("f64", peak / 2.0)] {
        let Some(g) = res.get(&format!("peers_gemm_{ty}")) else {
            continue;
        };
        let _ = writeln!(md, "## gemm, {ty}, square (GFLOP/s)\n");
        let _ = writeln!(
            md,
            "`C = A·B` for n × n matrices; `A·Bᵀ` and `Aᵀ·B` are the same product with an operand given transposed. Peers: `matrixmultiply` 0.3 (`{}gemm`, with its AVX-512 kernel) and nalgebra 0.34 (`DMatrix::gemm`, which calls matrixmultiply).\n",
            if ty == "f32" { "s" } else { "d" }
        );
        let _ = writeln!(
            md,
            "| n | constml A·B | A·Bᵀ | Aᵀ·B | matrixmultiply | nalgebra DMatrix | constml / matrixmultiply | constml, % of peak |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut lines: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for (k, f) in g {
            let get = |n: &str| f.get(n).and_then(gflops);
            let (c, mm) = (get("constml"), get("matrixmultiply"));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                k.1,
                opt(c, 1),
                opt(get("constml_bt"), 1),
                opt(get("constml_at"), 1),
                opt(mm, 1),
                opt(get("nalgebra_dmatrix"), 1),
                c.zip(mm)
                    .map_or("–".into(), |(a, b)| format!("{:.2}×", a / b)),
                c.map_or("–".into(), |a| format!("{:.0} %", 100.0 * a / pk)),
            );
            if ty == "f32" {
                for (name, label) in [
                    ("constml", "constml A·B"),
                    ("constml_bt", "constml A·Bᵀ"),
                    ("constml_at", "constml Aᵀ·B"),
                    ("matrixmultiply", "matrixmultiply"),
                    ("nalgebra_dmatrix", "nalgebra DMatrix"),
                ] {
                    if let Some(v) = get(name) {
                        lines.entry(label).or_default().push((k.num(), v));
                    }
                }
            }
        }
        md.push('\n');
        if ty == "f32" {
            for (i, (name, p)) in lines.into_iter().enumerate() {
                gemm_series.push((name.to_string(), COLOURS[i % COLOURS.len()], p));
            }
        }
    }
    if let Some(g) = res.get("peers_gemm_const_f32") {
        let _ = writeln!(
            md,
            "## gemm with sizes known at compile time, f32 (GFLOP/s)\n"
        );
        let _ = writeln!(
            md,
            "`constml::kernels::matmul::<N, N, N>` against nalgebra's stack-allocated `SMatrix<f32, N, N>` (`mul_to`).\n"
        );
        let _ = writeln!(md, "| n | constml | nalgebra SMatrix | constml / SMatrix |");
        let _ = writeln!(md, "|---:|---:|---:|---:|");
        for (k, f) in g {
            let (c, s) = (
                f.get("constml").and_then(gflops),
                f.get("nalgebra_smatrix").and_then(gflops),
            );
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                k.1,
                opt(c, 1),
                opt(s, 1),
                c.zip(s)
                    .map_or("–".into(), |(a, b)| format!("{:.2}×", a / b))
            );
        }
        md.push('\n');
    }
    if let Some(g) = res.get("peers_gemm_shapes_f32") {
        let _ = writeln!(md, "## gemm, transformer shapes, f32 (GFLOP/s)\n");
        let _ = writeln!(
            md,
            "| m × k × n | constml | matrixmultiply | nalgebra DMatrix | constml / matrixmultiply |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for (k, f) in g {
            let get = |n: &str| f.get(n).and_then(gflops);
            let (c, mm) = (get("constml"), get("matrixmultiply"));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                k.1,
                opt(c, 1),
                opt(mm, 1),
                opt(get("nalgebra_dmatrix"), 1),
                c.zip(mm)
                    .map_or("–".into(), |(a, b)| format!("{:.2}×", a / b))
            );
        }
        md.push('\n');
    }
    if !gemm_series.is_empty() {
        let svg = chart(
            "gemm f32, one core",
            "n (square matrices)",
            "GFLOP/s",
            &gemm_series,
            true,
            false,
        );
        let _ = fs::write(root.join("benches/gemm.svg"), svg);
        let _ = writeln!(md, "![gemm GFLOP/s against n](gemm.svg)\n");
    }

    // --- attention --------------------------------------------------------
    if let Some(g) = res.get("peers_attention_decode_f32") {
        let _ = writeln!(md, "## Attention decode step over a KV cache, f32\n");
        let _ = writeln!(
            md,
            "One query, 12 heads × 64, over a full cache of `len` positions (keys and values, f32). \"plain read\" sums as many bytes as the cache holds with `Simd::sum`: the bandwidth a step cannot beat. The naive peer is the textbook three loops over token-major keys and values.\n"
        );
        let _ = writeln!(
            md,
            "| len | cache | constml Simd | GB/s | % of plain read | Scalar | naive | plain read | Simd / Scalar | naive / Simd |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut series: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for (k, f) in g {
            let (Some(c), Some(s), Some(n), Some(r)) = (
                f.get("constml"),
                f.get("constml_scalar"),
                f.get("naive"),
                f.get("plain_read"),
            ) else {
                continue;
            };
            let _ = writeln!(
                md,
                "| {} | {} KiB | {} | {} | {:.0} % | {} | {} | {} | {:.1}× | {:.1}× |",
                k.1,
                c.bytes.map_or(0.0, |b| b / 1024.0),
                time(c.ns),
                opt(gbps(c), 1),
                100.0 * r.ns / c.ns,
                time(s.ns),
                time(n.ns),
                time(r.ns),
                s.ns / c.ns,
                n.ns / c.ns
            );
            for (name, row) in [
                ("constml Simd", c),
                ("constml Scalar", s),
                ("naive", n),
                ("plain read", r),
            ] {
                series
                    .entry(name)
                    .or_default()
                    .push((k.num(), row.ns / 1e3));
            }
        }
        md.push('\n');
        let series: Vec<_> = series
            .into_iter()
            .enumerate()
            .map(|(i, (n, p))| (n.to_string(), COLOURS[i], p))
            .collect();
        let _ = fs::write(
            root.join("benches/attention.svg"),
            chart(
                "attention decode step, 12 × 64, f32",
                "cache length (positions)",
                "µs per step",
                &series,
                true,
                true,
            ),
        );
        let _ = writeln!(
            md,
            "![attention decode time against cache length](attention.svg)\n"
        );
    }
    if let Some(g) = res.get("peers_stream_read_f32") {
        let _ = writeln!(
            md,
            "Streaming read (`Simd::sum`) by buffer size, for what the caches hold:\n"
        );
        let _ = writeln!(md, "| bytes | GB/s |");
        let _ = writeln!(md, "|---:|---:|");
        for (k, f) in g {
            if let Some(r) = f.get("sum") {
                let _ = writeln!(md, "| {} | {} |", k.1, opt(gbps(r), 1));
            }
        }
        md.push('\n');
    }

    // --- top-p ------------------------------------------------------------
    if let Some(g) = res.get("peers_top_p_f32") {
        let _ = writeln!(md, "## Top-p (p = 0.9) against vocabulary size, f32\n");
        let _ = writeln!(
            md,
            "Logits 3·N(0, 1). Every row copies the logits into a work buffer first (top-p rewrites them); \"softmax\" is one `Simd::softmax` pass, the yardstick. Peers: sort all V ids by probability and cut; an O(V) selection with `select_nth_unstable` (halve the candidates around their median, keep the upper half when its mass is short of p, and repeat in the half that holds the boundary).\n"
        );
        let _ = writeln!(
            md,
            "| V | constml | softmax | constml / softmax | sort | select_nth | sort / constml |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|");
        let mut series: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for (k, f) in g {
            let (Some(c), Some(s), Some(so), Some(se)) = (
                f.get("constml"),
                f.get("softmax_simd"),
                f.get("sort"),
                f.get("select_nth"),
            ) else {
                continue;
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2}× | {} | {} | {:.0}× |",
                k.1,
                time(c.ns),
                time(s.ns),
                c.ns / s.ns,
                time(so.ns),
                time(se.ns),
                so.ns / c.ns
            );
            for (name, row) in [
                ("constml top-p", c),
                ("one Simd softmax", s),
                ("sort", so),
                ("select_nth", se),
            ] {
                series
                    .entry(name)
                    .or_default()
                    .push((k.num(), row.ns / 1e3));
            }
        }
        md.push('\n');
        let series: Vec<_> = series
            .into_iter()
            .enumerate()
            .map(|(i, (n, p))| (n.to_string(), COLOURS[i], p))
            .collect();
        let _ = fs::write(
            root.join("benches/top_p.svg"),
            chart(
                "top-p 0.9, f32",
                "vocabulary size V",
                "µs per call",
                &series,
                true,
                true,
            ),
        );
        let _ = writeln!(md, "![top-p time against V](top_p.svg)\n");
    }

    // --- every library bench: Scalar, good scalar, Simd ------------------
    let _ = writeln!(md, "## Every algorithm: Scalar, good scalar, Simd\n");
    let _ = writeln!(
        md,
        "From the library's own benches (`cargo bench --bench '*'`), grouped by case. `scalar` is the `Scalar` backend (plain loops, one accumulator each: the oracle); `good scalar` is what a performance engineer writes without SIMD (several accumulators, the better loop order, compiled with the same flags, so LLVM may vectorise it) — the `good_scalar` rows, and the `Scalar` backend's own rows where a bench says so (conv2d's `direct`); `natural` is the plain loop in its textbook order where a bench has one; `simd` is the `Simd` backend. Throughput: G/s counts the elements a bench declares (FLOPs for products), GB/s its bytes.\n"
    );
    let _ = writeln!(
        md,
        "| bench | case | scalar | good scalar | natural | simd | scalar / simd | good scalar / simd | natural / simd | simd throughput |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (group, case, cols) in cases(&res) {
        let get = |b: &str| cols.get(b);
        let simd = get("simd");
        let ratio = |x: Option<&Row>| {
            x.zip(simd)
                .map_or("–".into(), |(x, s)| format!("{:.1}×", x.ns / s.ns))
        };
        let t = |x: Option<&Row>| x.map_or("–".into(), |r| time(r.ns));
        let thr = simd.map_or("–".into(), |s| match (gflops(s), gbps(s)) {
            (Some(g), _) => format!("{g:.1} G/s"),
            (_, Some(b)) => format!("{b:.1} GB/s"),
            _ => "–".into(),
        });
        let _ = writeln!(
            md,
            "| {group} | {case} | {} | {} | {} | {} | {} | {} | {} | {thr} |",
            t(get("scalar")),
            t(get("good_scalar")),
            t(get("natural")),
            t(simd),
            ratio(get("scalar")),
            ratio(get("good_scalar")),
            ratio(get("natural")),
        );
    }
    md.push('\n');
    let others: Vec<String> = others(&res);
    if !others.is_empty() {
        let _ = writeln!(
            md,
            "Rows without a backend in their name (baselines, peers, variants):\n"
        );
        let _ = writeln!(md, "| bench | row | median |");
        let _ = writeln!(md, "|---|---|---:|");
        for o in others {
            let _ = writeln!(md, "{o}");
        }
        md.push('\n');
    }
    let md = md.replacen("<!-- headline -->", &headline(&res, peak), 1);
    let _ = fs::write(root.join("benches/REPORT.md"), md);
    println!("wrote benches/REPORT.md, benches/gemm.svg, benches/attention.svg, benches/top_p.svg");
}
