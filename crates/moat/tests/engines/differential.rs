//! Running one engine case under runc and under moat and comparing what
//! each showed, with an allow-list of documented differences; and the
//! normalising that makes two honest runs' output comparable.
#![allow(dead_code)]

use std::time::Instant;

/// The runtimes compared; runc, the oracle, runs first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Runtime {
    Runc,
    Moat,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Moat => "moat",
        }
    }

    /// A container (or image) name of this runtime's own: `base-runc`.
    pub fn own(self, base: &str) -> String {
        format!("{base}-{}", self.as_str())
    }
}

/// One behaviour: what the case's engine commands showed under a runtime,
/// as text with nothing in it that differs between two honest runs.
pub struct Case<E> {
    pub name: &'static str,
    pub observe: fn(&E, Runtime) -> String,
}

/// What the comparison needs from an engine.
pub trait Engine {
    /// How many containers moat has been asked to create so far.
    fn moat_creates(&self) -> usize;
    /// A mark in the engine's own log, for `diagnostics`.
    fn log_mark(&self) -> u64;
    /// What the engine and moat logged since `mark`, for a failure.
    fn diagnostics(&self, mark: u64) -> String;
}

/// Runs `case` under runc, then moat, and compares, allowing the
/// difference `differences` lists for it; checks that moat, and only moat,
/// was asked to create containers for the moat run. `label` prefixes
/// progress lines.
pub fn compare<E: Engine>(engine: &E, case: &Case<E>, differences: &[(&str, &str)], label: &str) -> Result<(), String> {
    let t = Instant::now();
    let mark = engine.log_mark();
    let creates = engine.moat_creates();
    let runc = (case.observe)(engine, Runtime::Runc);
    if engine.moat_creates() != creates {
        return Err("moat was called for a container run with runc".into());
    }
    let moat = (case.observe)(engine, Runtime::Moat);
    if engine.moat_creates() == creates {
        return Err(format!("moat created no container for the run with moat; it showed:\n{moat}"));
    }
    let allowed = differences.iter().find(|(name, _)| *name == case.name);
    match (runc == moat, allowed) {
        (true, None) => {
            eprintln!("{label}: {}: same ({:?})", case.name, t.elapsed());
            Ok(())
        }
        (false, Some((_, why))) => {
            eprintln!("{label}: {}: differs, as documented: {why}", case.name);
            Ok(())
        }
        (true, Some(_)) => Err(format!("listed as a difference but now the same; remove the entry:\n{moat}")),
        (false, None) => {
            Err(format!("under runc:\n{}\nunder moat:\n{}{}", indent(&runc), indent(&moat), engine.diagnostics(mark)))
        }
    }
}

/// Runs every case (until `budget` is spent) and checks the allow-list
/// names only cases; returns the failures.
pub fn run_all<E: Engine>(
    engine: &E,
    cases: &[Case<E>],
    differences: &[(&str, &str)],
    label: &str,
    budget: std::time::Duration,
) -> Vec<String> {
    let started = Instant::now();
    let mut failures = Vec::new();
    for case in cases {
        if started.elapsed() > budget {
            failures.push(format!("{}: not run: the time budget of {budget:?} is spent", case.name));
            continue;
        }
        if let Err(e) = compare(engine, case, differences, label) {
            eprintln!("{label}: {}: FAILED\n{e}\n", case.name);
            failures.push(format!("{}: FAILED\n{e}", case.name));
        }
    }
    for (name, _) in differences {
        if !cases.iter().any(|c| c.name == *name) {
            failures.push(format!("the allow-list names {name:?}, which is no case"));
        }
    }
    failures
}

pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    | {l}\n")).collect()
}

/// Without carriage returns (a terminal's) and container ids (12 or 64 hex
/// digits), which differ between any two runs.
pub fn clean(text: &str) -> String {
    let text = text.replace('\r', "");
    let mut out = String::new();
    for word in text.split_inclusive(|c: char| !c.is_ascii_hexdigit()) {
        let hex = word.trim_end_matches(|c: char| !c.is_ascii_hexdigit());
        if hex.len() == 12 || hex.len() == 64 {
            out.push_str("<id>");
            out.push_str(&word[hex.len()..]);
        } else {
            out.push_str(word);
        }
    }
    out
}

/// The wrapper engines call as the `moat` runtime: it appends its
/// arguments to `calls`, then runs moat, so that a test can prove moat ran.
pub fn moat_wrapper(dir: &std::path::Path, moat: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let calls = dir.join("moat-calls.log");
    let wrapper = dir.join("moat-runtime");
    std::fs::write(&wrapper, format!("#!/bin/sh\necho \"$*\" >> '{}'\nexec '{moat}' \"$@\"\n", calls.display()))
        .expect("fixture: write the moat wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("fixture: chmod the wrapper");
    (wrapper, calls)
}

/// How many `create` calls `calls` (from `moat_wrapper`) records.
pub fn creates_in(calls: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(calls).unwrap_or_default();
    text.lines().filter(|l| l.split_whitespace().any(|w| w == "create")).count()
}
