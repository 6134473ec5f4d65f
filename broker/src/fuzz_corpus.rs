//! Replays the checked-in fuzz inputs of one target through its check
//! function, so every fuzz target also runs in the default test run on
//! stable Rust, without cargo-fuzz.
//!
//! A target's inputs live in three folders of the repository:
//! `fuzz/seeds/TARGET` (hand-written or derived valid inputs),
//! `fuzz/corpus/TARGET` (what libFuzzer kept) and
//! `tests/data/fuzz/TARGET` (minimised crashers, one per fixed bug).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The folders holding `target`'s inputs, below the repository root.
pub fn dirs(root: &Path, target: &str) -> [PathBuf; 3] {
    [
        root.join("fuzz/seeds").join(target),
        root.join("fuzz/corpus").join(target),
        root.join("tests/data/fuzz").join(target),
    ]
}

/// Every input of `target`, sorted by path. `manifest_dir` is the calling
/// crate's `CARGO_MANIFEST_DIR`; the repository root is the nearest
/// ancestor holding `fuzz/Cargo.toml`. Missing folders are skipped.
pub fn inputs(manifest_dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Some(root) = Path::new(manifest_dir)
        .ancestors()
        .find(|dir| dir.join("fuzz/Cargo.toml").is_file())
    else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dirs(root, target)
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| std::fs::read(&path).ok().map(|data| (path, data)))
        .collect()
}

/// Feeds every input of `target` to `check` and returns how many there
/// were. A panicking input is re-raised with its path named first, so a
/// failing test says which file to look at.
///
/// # Panics
///
/// If `check` panics, or if the target has no inputs at all (a renamed
/// folder would otherwise turn the smoke test into a no-op).
pub fn replay(manifest_dir: &str, target: &str, check: impl Fn(&[u8])) -> usize {
    let inputs = inputs(manifest_dir, target);
    assert!(!inputs.is_empty(), "no fuzz inputs for target {target}");
    for (path, data) in &inputs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(data))) {
            eprintln!("fuzz input {} failed", path.display());
            resume_unwind(panic);
        }
    }
    inputs.len()
}
