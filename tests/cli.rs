//! The `wardmq` binary's argument and configuration paths, run as a user
//! would. None of these start the broker: each stops at a usage error.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the binary to completion, killing it (and failing) after TIMEOUT so
/// a regression that starts the server cannot hang the suite.
fn wardmq(args: &[&str], dir: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wardmq"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wardmq");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match child.try_wait().expect("poll wardmq") {
            Some(_) => return child.wait_with_output().expect("collect output"),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "wardmq {args:?} still running after {TIMEOUT:?}\nstdout: {}\nstderr: {}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_config_problem_is_reported_and_nothing_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bad.toml"),
        "\
[listeners]
tcp = \"not-an-address\"

[limits]
max_inflight = 0
max_conections = 10
receive_maximum = 0

[log]
format = \"yaml\"
",
    )
    .expect("write config");

    let out = wardmq(&["serve", "--config", "bad.toml"], dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("wardmq: invalid configuration in bad.toml:"),
        "{stderr}"
    );
    for expected in [
        "line 2: listeners.tcp: `not-an-address`",
        "line 5: limits.max_inflight: 0 is out of range",
        "line 6: limits.max_conections: unknown field `max_conections`",
        "line 7: limits.receive_maximum: 0 is out of range",
        "line 10: log.format: `yaml`",
    ] {
        assert!(
            lines.iter().any(|l| l.trim_start().starts_with(expected)),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert_eq!(lines.len(), 6, "one line per problem:\n{stderr}");
    assert!(!text(&out.stdout).contains("listening"));
    assert!(
        !dir.path().join("data").exists(),
        "nothing may start on a bad configuration"
    );
}

#[test]
fn toml_syntax_error_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("broken.toml"), "[storage]\ndata_dir = \n")
        .expect("write config");
    let out = wardmq(&["serve", "-c", "broken.toml"], dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.starts_with("wardmq: invalid configuration in broken.toml:\n  line 2: "),
        "{stderr}"
    );
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = wardmq(&["serve", "--config", "missing.toml"], dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.starts_with("wardmq: cannot read config file missing.toml: "),
        "{stderr}"
    );
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = wardmq(&["serve", "--tcp", "localhost"], dir.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--tcp"), "{stderr}");

    let out = wardmq(&["serve", "--no-such-flag"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_describes_the_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = wardmq(&["--help"], dir.path());
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("serve"));

    let out = wardmq(&["serve", "--help"], dir.path());
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in ["--config <FILE>", "--data <DIR>", "--tcp <ADDR>"] {
        assert!(help.contains(flag), "missing {flag} in:\n{help}");
    }

    let out = wardmq(&[], dir.path());
    assert_eq!(out.status.code(), Some(2), "a command is required");
}
