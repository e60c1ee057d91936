//! The outputs quoted in the docs are the program's: every block between
//! `<!-- output: COMMAND -->` and `<!-- /output -->` in README.md, docs/*.md and
//! the crates' READMEs is what COMMAND prints, run by this test with the built
//! `gatehouse` first on PATH in a throwaway profile.
//!
//! - By default the test runs the deterministic blocks and fails, naming each
//!   file, line and command, where the docs drifted from the program.
//! - Blocks marked `<!-- output(varies): COMMAND -->` (timings, pids, the demo)
//!   are not compared; they are rewritten, with all others, when
//!   `GATEHOUSE_DOCS_WRITE=1` is set (`=fixed`: the deterministic ones only) — that is what `scripts/docs-output` does,
//!   with `GATEHOUSE_DOCS_BIN` naming the release build's directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gatehouse_tests::install::find_binary;

const OPEN: &str = "<!-- output";
const CLOSE: &str = "<!-- /output -->";

/// One marked block in one file.
struct Block {
    /// Line index of the opening marker.
    open: usize,
    /// Line index of the closing marker.
    close: usize,
    command: String,
    varies: bool,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    for dir in std::fs::read_dir(root).unwrap().flatten() {
        let path = dir.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "docs") {
                for f in std::fs::read_dir(&path).unwrap().flatten() {
                    if f.path().extension().is_some_and(|e| e == "md") {
                        files.push(f.path());
                    }
                }
            } else if path.join("README.md").is_file() {
                files.push(path.join("README.md"));
            }
        }
    }
    files.sort();
    files
}

/// Finds the marked blocks of a file; a marker without its closing line is an error.
fn blocks(path: &Path, lines: &[&str]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line.strip_prefix(OPEN) {
            let (varies, rest) = match rest.strip_prefix("(varies)") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let command = rest
                .strip_prefix(':')
                .and_then(|r| r.strip_suffix("-->"))
                .unwrap_or_else(|| panic!("{}:{}: malformed output marker", path.display(), i + 1))
                .trim()
                .to_string();
            let close = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == CLOSE)
                .unwrap_or_else(|| {
                    panic!(
                        "{}:{}: output marker without {CLOSE}",
                        path.display(),
                        i + 1
                    )
                });
            out.push(Block {
                open: i,
                close,
                command,
                varies,
            });
            i = close;
        }
        i += 1;
    }
    out
}

/// Runs one documented command the way a reader would, in a throwaway profile.
fn run(command: &str, bin_dir: &Path) -> String {
    let home = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(command)
        .env("PATH", path)
        .env("GATEHOUSE_HOME", home.path())
        .env_remove("DISPLAY")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    format!("```\n$ {command}\n{text}\n```")
}

#[test]
fn docs_outputs_are_what_the_program_prints() {
    // "1": rewrite every block; "fixed": rewrite the deterministic ones only.
    let mode = std::env::var("GATEHOUSE_DOCS_WRITE").unwrap_or_default();
    let write = mode == "1" || mode == "fixed";
    let write_varies = mode == "1";
    // scripts/docs-output points this at the release build (benchmarks).
    let bin_dir = match std::env::var_os("GATEHOUSE_DOCS_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let gatehouse = find_binary("gatehouse")
                .expect("build the binaries first: cargo build --workspace --bins");
            gatehouse.parent().unwrap().to_path_buf()
        }
    };
    let mut drift = Vec::new();
    let mut compared = 0;
    for file in doc_files(&repo_root()) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        let found = blocks(&file, &lines);
        if found.is_empty() {
            continue;
        }
        let mut new_lines: Vec<String> = Vec::new();
        let mut next = 0;
        for b in &found {
            new_lines.extend(lines[next..=b.open].iter().map(|l| l.to_string()));
            let current = lines[b.open + 1..b.close].join("\n");
            let fresh = if b.varies && !write_varies {
                current.clone()
            } else {
                run(&b.command, &bin_dir)
            };
            if !b.varies {
                compared += 1;
                if fresh.trim() != current.trim() {
                    drift.push(format!(
                        "{}:{}: `{}`\n--- docs\n{}\n--- program\n{}",
                        file.display(),
                        b.open + 1,
                        b.command,
                        current,
                        fresh
                    ));
                }
            }
            // An empty block stays empty (no blank line is added per rewrite).
            if !fresh.is_empty() {
                new_lines.push(fresh);
            }
            next = b.close;
        }
        new_lines.extend(lines[next..].iter().map(|l| l.to_string()));
        if write {
            std::fs::write(&file, new_lines.join("\n") + "\n").unwrap();
        }
    }
    assert!(
        compared > 0,
        "no deterministic output block found in the docs"
    );
    if !write {
        assert!(
            drift.is_empty(),
            "the docs drifted from the program (run scripts/docs-output):\n{}",
            drift.join("\n\n")
        );
    }
}
