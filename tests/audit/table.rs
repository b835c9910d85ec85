//! The bad-input audit table (`src/audit.rs`, rendered as `constml::audit`)
//! stays complete and tested:
//!
//! * every public function of the library (a `pub fn` or `pub const fn` not in
//!   a `#[cfg(test)]` module or behind `#[doc(hidden)]`, a public trait's
//!   method, a `simd_default!` wrapper) is named in a row of its own module;
//! * every name a row gives is a public function of that module (no stale
//!   rows);
//! * every test a row cites exists as a `#[test]` function in `tests/` or
//!   `src/` and is not `#[ignore]`d.
//!
//! The scan reads the sources as text with a small brace counter (enough for
//! this code base's formatting, which `cargo fmt` keeps stable).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/decode/top_p.rs` → `decode::top_p`; `src/norm/mod.rs` → `norm`;
/// `src/lib.rs` → `crate`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(root().join("src")).unwrap();
    let s = rel.with_extension("").to_string_lossy().replace('/', "::");
    match s.as_str() {
        "lib" => "crate".into(),
        _ => s.strip_suffix("::mod").unwrap_or(&s).to_string(),
    }
}

fn ident_after<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(prefix)?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The public functions of every module, by the rules in the file docs.
fn public_functions() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut out = BTreeMap::new();
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        let mut names = BTreeSet::new();
        let mut depth: i64 = 0;
        let mut trait_depth: Option<i64> = None;
        let mut pending_trait = false;
        let mut test_mod: Option<i64> = None;
        let mut cfg_test = false;
        let mut hidden = false;
        for line in text.lines() {
            let s = line.trim();
            let opens = line.matches('{').count() as i64 - line.matches('}').count() as i64;
            if s.starts_with("#[cfg(test)]") {
                cfg_test = true;
            }
            if s.starts_with("#[doc(hidden)]") {
                hidden = true;
                depth += opens;
                continue;
            }
            let skip = hidden;
            if !s.starts_with("///") && !s.starts_with("#[") {
                hidden = false;
            }
            if test_mod.is_none() && !skip {
                let f = ident_after(s, "pub fn ").or_else(|| ident_after(s, "pub const fn "));
                if let Some(f) = f {
                    names.insert(f.to_string());
                }
                if let Some(f) = ident_after(s, "crate::simd_default!(") {
                    names.insert(f.to_string());
                }
                if trait_depth.is_some_and(|d| depth == d + 1)
                    && let Some(f) = ident_after(s, "fn ")
                {
                    names.insert(f.to_string());
                }
            }
            if s.starts_with("pub trait ") {
                pending_trait = true;
            }
            if pending_trait && s.contains('{') {
                trait_depth = Some(depth);
                pending_trait = false;
            }
            if cfg_test && s.starts_with("mod ") {
                test_mod = Some(depth);
                cfg_test = false;
            }
            depth += opens;
            if trait_depth.is_some_and(|d| depth <= d) {
                trait_depth = None;
            }
            if test_mod.is_some_and(|d| depth <= d) && s.contains('}') {
                test_mod = None;
            }
        }
        if !names.is_empty() {
            out.insert(module_of(&path), names);
        }
    }
    out
}

struct Row {
    line: usize,
    module: String,
    functions: Vec<String>,
    tests: Vec<String>,
}

/// The names in backticks of a cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn rows() -> Vec<Row> {
    let text = fs::read_to_string(root().join("src/audit.rs")).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(s) = line.trim().strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = s.trim_end_matches('|').split('|').map(str::trim).collect();
        assert_eq!(
            cells.len(),
            4,
            "src/audit.rs:{}: a row has four cells",
            i + 1
        );
        if cells[0] == "module" || cells[0].starts_with("---") {
            continue;
        }
        out.push(Row {
            line: i + 1,
            module: cells[0].trim_matches('`').to_string(),
            // `Type::method` names a method where two types share its name.
            functions: ticked(cells[1])
                .iter()
                .map(|f| f.rsplit("::").next().unwrap_or(f).to_string())
                .collect(),
            tests: ticked(cells[3]),
        });
    }
    out
}

#[test]
fn every_public_function_has_a_row_of_its_module() {
    let public = public_functions();
    let rows = rows();
    assert!(rows.len() > 50, "the table has {} rows", rows.len());
    let mut missing = Vec::new();
    for (module, names) in &public {
        for name in names {
            let listed = rows
                .iter()
                .any(|r| &r.module == module && r.functions.iter().any(|f| f == name));
            if !listed {
                missing.push(format!("{module}::{name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "public functions without a row: {missing:?}"
    );
}

#[test]
fn every_row_names_public_functions_of_its_module() {
    let public = public_functions();
    for r in rows() {
        let names = public
            .get(&r.module)
            .unwrap_or_else(|| panic!("src/audit.rs:{}: no module `{}`", r.line, r.module));
        assert!(
            !r.functions.is_empty(),
            "src/audit.rs:{}: no function",
            r.line
        );
        for f in &r.functions {
            assert!(
                names.contains(f),
                "src/audit.rs:{}: `{f}` is not a public function of `{}`",
                r.line,
                r.module
            );
        }
    }
}

#[test]
fn every_row_cites_tests_that_exist_and_run() {
    let mut files = Vec::new();
    rust_files(&root().join("tests"), &mut files);
    rust_files(&root().join("src"), &mut files);
    let sources: Vec<String> = files
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    // `name` → whether some `#[test]` function of that name runs.
    let runs = |name: &str| -> Option<bool> {
        for src in &sources {
            let lines: Vec<&str> = src.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                let t = l.trim();
                let is_fn =
                    ident_after(t, "fn ") == Some(name) || ident_after(t, "pub fn ") == Some(name);
                if !is_fn {
                    continue;
                }
                let attrs: Vec<&str> = lines[i.saturating_sub(8)..i]
                    .iter()
                    .rev()
                    .map(|l| l.trim())
                    .take_while(|l| l.starts_with("#[") || l.starts_with("///"))
                    .collect();
                if attrs.iter().any(|a| a.starts_with("#[test]")) {
                    return Some(!attrs.iter().any(|a| a.starts_with("#[ignore")));
                }
            }
        }
        None
    };
    for r in rows() {
        assert!(
            !r.tests.is_empty(),
            "src/audit.rs:{}: no test cited",
            r.line
        );
        for t in &r.tests {
            match runs(t) {
                Some(true) => {}
                Some(false) => panic!("src/audit.rs:{}: test `{t}` is ignored", r.line),
                None => panic!("src/audit.rs:{}: no #[test] fn `{t}`", r.line),
            }
        }
    }
}
