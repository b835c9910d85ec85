//! A tiny hand-written SVG plot for the examples: one framed panel with two
//! axes (linear or logarithmic), tick labels, polylines, dots, crosses,
//! dashed guide lines and a legend. Text in, text out; no dependency.
//!
//! Included by the examples with `#[path = "common/svg.rs"] mod svg;`. Each
//! example uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 56.0;

/// One axis: its data range, its scale and its label.
#[derive(Clone, Debug)]
pub struct Axis {
    pub min: f64,
    pub max: f64,
    pub log: bool,
    pub label: String,
}

impl Axis {
    /// A linear axis over `[min, max]`, widened by 5 % on each side.
    pub fn linear(min: f64, max: f64, label: &str) -> Self {
        let pad = 0.05 * (max - min).abs().max(1e-12);
        Self {
            min: min - pad,
            max: max + pad,
            log: false,
            label: label.to_string(),
        }
    }

    /// A logarithmic axis over `[min, max]` (both `> 0`), widened slightly.
    pub fn log(min: f64, max: f64, label: &str) -> Self {
        let f = (max / min).powf(0.04).max(1.0 + 1e-9);
        Self {
            min: min / f,
            max: max * f,
            log: true,
            label: label.to_string(),
        }
    }

    /// Position of `v` on the axis as a fraction in `[0, 1]`.
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.ln() - self.min.ln()) / (self.max.ln() - self.min.ln())
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }

    /// Tick values: 1-2-5 multiples, about five of them inside the range.
    fn ticks(&self) -> Vec<f64> {
        if self.log && self.max / self.min > 10.0 {
            let mut out = Vec::new();
            let mut decade = 10f64.powf(self.min.log10().floor());
            while decade <= self.max {
                for m in [1.0, 2.0, 5.0] {
                    let v = m * decade;
                    if v >= self.min && v <= self.max {
                        out.push(v);
                    }
                }
                decade *= 10.0;
            }
            return out;
        }
        let span = self.max - self.min;
        let raw = span / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| span / s <= 6.0)
            .unwrap_or(10.0 * mag);
        let mut v = (self.min / step).ceil() * step;
        let mut out = Vec::new();
        while v <= self.max + 1e-9 * step {
            out.push(if v.abs() < 1e-9 * step { 0.0 } else { v });
            v += step;
        }
        out
    }
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, Debug)]
pub enum Mark {
    Line,
    Dashed,
    Dot,
    Cross,
}

/// A single-panel plot under construction.
pub struct Plot {
    title: String,
    x: Axis,
    y: Axis,
    body: String,
    legend: Vec<(String, String, Mark)>,
}

/// Escapes the characters XML gives a meaning to.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick label: short, without trailing zeros.
fn tick_label(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.0e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl Plot {
    pub fn new(title: &str, x: Axis, y: Axis) -> Self {
        Self {
            title: title.to_string(),
            x,
            y,
            body: String::new(),
            legend: Vec::new(),
        }
    }

    fn px(&self, v: f64) -> f64 {
        LEFT + self.x.frac(v) * (WIDTH - LEFT - RIGHT)
    }

    fn py(&self, v: f64) -> f64 {
        HEIGHT - BOTTOM - self.y.frac(v) * (HEIGHT - TOP - BOTTOM)
    }

    /// A connected line through `pts` (data coordinates).
    pub fn polyline(&mut self, pts: &[(f64, f64)], color: &str) {
        let mut p = String::new();
        for &(x, y) in pts {
            let _ = write!(p, "{:.1},{:.1} ", self.px(x), self.py(y));
        }
        let _ = writeln!(
            self.body,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            p.trim_end()
        );
    }

    /// A dashed horizontal line at `y` across the panel.
    pub fn hline(&mut self, y: f64, color: &str) {
        let (x0, x1, py) = (LEFT, WIDTH - RIGHT, self.py(y));
        let _ = writeln!(
            self.body,
            r#"<line x1="{x0:.1}" y1="{py:.1}" x2="{x1:.1}" y2="{py:.1}" stroke="{color}" stroke-width="1.2" stroke-dasharray="6 4"/>"#
        );
    }

    /// A filled dot.
    pub fn dot(&mut self, x: f64, y: f64, color: &str) {
        let _ = writeln!(
            self.body,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}" fill-opacity="0.75"/>"#,
            self.px(x),
            self.py(y)
        );
    }

    /// A diagonal cross (`×`) of half-size 7 px, outlined for contrast.
    pub fn cross(&mut self, x: f64, y: f64, color: &str) {
        let (cx, cy, s) = (self.px(x), self.py(y), 7.0);
        for (stroke, width) in [("white", 5.0), (color, 2.5)] {
            let _ = writeln!(
                self.body,
                r#"<path d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}" stroke="{stroke}" stroke-width="{width}"/>"#,
                cx - s,
                cy - s,
                cx + s,
                cy + s,
                cx - s,
                cy + s,
                cx + s,
                cy - s
            );
        }
    }

    /// Adds a legend entry.
    pub fn legend(&mut self, label: &str, color: &str, mark: Mark) {
        self.legend
            .push((label.to_string(), color.to_string(), mark));
    }

    /// The finished document.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let (w, h) = (WIDTH, HEIGHT);
        let (x0, x1) = (LEFT, WIDTH - RIGHT);
        let (y0, y1) = (HEIGHT - BOTTOM, TOP);
        let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
            w / 2.0,
            esc(&self.title)
        );
        // Grid lines and tick labels.
        for t in self.x.ticks() {
            let px = self.px(t);
            let _ = writeln!(
                s,
                r##"<line x1="{px:.1}" y1="{y0:.1}" x2="{px:.1}" y2="{y1:.1}" stroke="#e4e4e4"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                y0 + 16.0,
                tick_label(t)
            );
        }
        for t in self.y.ticks() {
            let py = self.py(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x0:.1}" y1="{py:.1}" x2="{x1:.1}" y2="{py:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 - 6.0,
                py + 4.0,
                tick_label(t)
            );
        }
        // Data, clipped to the panel.
        let _ = writeln!(
            s,
            r#"<clipPath id="panel"><rect x="{x0}" y="{y1}" width="{:.1}" height="{:.1}"/></clipPath>"#,
            x1 - x0,
            y0 - y1
        );
        let _ = writeln!(s, r#"<g clip-path="url(#panel)">"#);
        s.push_str(&self.body);
        let _ = writeln!(s, "</g>");
        // Frame and axis labels.
        let _ = writeln!(
            s,
            r#"<rect x="{x0}" y="{y1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
            x1 - x0,
            y0 - y1
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            h - 14.0,
            esc(&self.x.label)
        );
        let (lx, ly) = (18.0, (y0 + y1) / 2.0);
        let _ = writeln!(
            s,
            r#"<text x="{lx}" y="{ly:.1}" text-anchor="middle" transform="rotate(-90 {lx} {ly:.1})">{}</text>"#,
            esc(&self.y.label)
        );
        // Legend, top right inside the panel.
        if !self.legend.is_empty() {
            // About 7 px per character at this font size, plus the mark.
            let chars = self.legend.iter().map(|e| e.0.chars().count()).max();
            let bw = 56.0 + 7.0 * chars.unwrap_or(0) as f64;
            let bh = 10.0 + 18.0 * self.legend.len() as f64;
            let (bx, by) = (x1 - bw - 10.0, y1 + 10.0);
            let _ = writeln!(
                s,
                r##"<rect x="{bx:.1}" y="{by:.1}" width="{bw}" height="{bh}" fill="white" fill-opacity="0.9" stroke="#999"/>"##
            );
            for (i, (label, color, mark)) in self.legend.iter().enumerate() {
                let cy = by + 14.0 + 18.0 * i as f64;
                let (mx0, mx1) = (bx + 8.0, bx + 36.0);
                let _ = match mark {
                    Mark::Line | Mark::Dashed => writeln!(
                        s,
                        r#"<line x1="{mx0:.1}" y1="{cy:.1}" x2="{mx1:.1}" y2="{cy:.1}" stroke="{color}" stroke-width="2"{}/>"#,
                        if matches!(mark, Mark::Dashed) {
                            r#" stroke-dasharray="6 4""#
                        } else {
                            ""
                        }
                    ),
                    Mark::Dot => writeln!(
                        s,
                        r#"<circle cx="{:.1}" cy="{cy:.1}" r="4" fill="{color}"/>"#,
                        (mx0 + mx1) / 2.0
                    ),
                    Mark::Cross => {
                        let c = (mx0 + mx1) / 2.0;
                        writeln!(
                            s,
                            r#"<path d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}" stroke="{color}" stroke-width="2.5"/>"#,
                            c - 5.0,
                            cy - 5.0,
                            c + 5.0,
                            cy + 5.0,
                            c - 5.0,
                            cy + 5.0,
                            c + 5.0,
                            cy - 5.0
                        )
                    }
                };
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                    mx1 + 8.0,
                    cy + 4.0,
                    esc(label)
                );
            }
        }
        let _ = writeln!(s, "</svg>");
        s
    }

    /// Writes the document to `path`, creating its folder if needed.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.render())
    }
}
