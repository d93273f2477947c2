//! The `tl-audit check FILE` command on real captured output and on bad
//! input: exit 0 (clean), 1 (findings), 2 (unreadable, with the line named),
//! never a panic.
#![cfg(not(miri))] // Miri cannot spawn processes; `check` itself is tested in the library.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Worker, capture};
use tl_audit::Mode;
use tl_core::ThreadLocal;

static CONN: ThreadLocal<String> = ThreadLocal::new().named("CONN");

/// A log with one unreleased finding, as a service would write it.
fn leaky_log() -> String {
    let _serial = tl_audit::testing::serial();
    let (dispatch, _layer, json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(target: "my_service", "started");
        let auditor = common::full_manual().mode(Mode::Deny).install().unwrap();
        let worker = Worker::new("cli-worker");
        worker.run(|| tl_audit::task("handle_checkout", || drop(CONN.set("db".to_owned()))));
        worker.run(|| CONN.remove());
        worker.stop();
        auditor.finish().unwrap();
        tracing::info!(target: "my_service", "stopped");
    });
    json.contents()
}

/// A log of a clean run: events of the service and the audit summary only.
fn clean_log() -> String {
    let _serial = tl_audit::testing::serial();
    let (dispatch, _layer, json) = capture();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(target: "my_service", "started");
        let auditor = common::full_manual().mode(Mode::Deny).install().unwrap();
        tl_audit::task("handle_checkout", || drop(CONN.scope("db".to_owned())));
        auditor.finish().unwrap();
    });
    json.contents()
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tl-audit-cli-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tl_audit(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tl-audit"))
        .args(args)
        .output()
        .unwrap()
}

fn check(path: &Path) -> (i32, String, String) {
    let out = tl_audit(&["check".as_ref(), path.as_os_str()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().expect("exited"), stdout, stderr)
}

#[test]
fn findings_are_printed_as_a_table_and_exit_1() {
    let tmp = TempDir::new("table");
    let path = tmp.file("leaky.json", leaky_log().as_bytes());
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let mut lines = stdout.lines();
    let header = lines.next().unwrap();
    for column in [
        "LINE", "KIND", "THREAD", "KEY", "TYPE", "BYTES", "AGE", "SET AT", "TASK",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = lines.next().unwrap();
    for cell in [
        "2",
        "unreleased",
        "cli-worker (#",
        "CONN",
        "alloc::string::String",
        "24",
        "cli.rs:",
        "handle_checkout",
    ] {
        assert!(row.contains(cell), "{cell} missing in {row}");
    }
    assert!(
        stdout.contains("1 thread-local leak finding event(s) logged: 1 unreleased"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the auditor's shutdown summary: 1 finding(s) in total (0 stranded, 1 unreleased, 0 growth)"),
        "{stdout}"
    );
}

#[test]
fn a_clean_log_exits_0() {
    let tmp = TempDir::new("clean");
    let path = tmp.file("clean.json", clean_log().as_bytes());
    let (code, stdout, _) = check(&path);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("no thread-local leak finding events"),
        "{stdout}"
    );
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tl-audit"))
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(leaky_log().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_input_exits_2_naming_the_line() {
    let tmp = TempDir::new("bad");
    let log = leaky_log();
    let cut = &log[..log.len() - 40];
    let n = cut.lines().count();
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "truncated.json",
            cut.as_bytes().to_vec(),
            format!("line {n}: truncated JSON"),
        ),
        (
            "binary.bin",
            vec![0x7f, b'E', b'L', b'F', 0, 0xff, 0xfe, b'\n', 1, 2, 3],
            "line 1: invalid UTF-8".into(),
        ),
        (
            "text.log",
            b"INFO started\n".to_vec(),
            "line 1, column 1: not JSON: expected value".into(),
        ),
        (
            "array.json",
            b"[]\n".to_vec(),
            "line 1: expected a JSON object".into(),
        ),
        ("empty.json", Vec::new(), "no events".into()),
        ("blank.json", b"\n \n".to_vec(), "no events".into()),
        (
            "huge.json",
            vec![b'x'; 17 * 1024 * 1024],
            "line 1: longer than 16777216 bytes".into(),
        ),
    ];
    for (name, contents, expected) in cases {
        let path = tmp.file(name, &contents);
        let (code, stdout, stderr) = check(&path);
        assert_eq!(code, 2, "{name}: {stdout}{stderr}");
        assert!(stderr.starts_with("tl-audit: "), "{name}: {stderr}");
        assert!(stderr.contains(name), "{name}: the file is named: {stderr}");
        assert!(
            stderr.contains(&expected),
            "{name}: expected {expected:?} in {stderr}"
        );
    }
}

#[test]
fn empty_is_fine_when_allowed() {
    let tmp = TempDir::new("allow-empty");
    let path = tmp.file("allowed-empty.json", b"");
    let out = tl_audit(&["check".as_ref(), "--allow-empty".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn bad_usage_and_missing_files_exit_2() {
    let dir = std::env::temp_dir();
    for (args, expected) in [
        (vec![], "missing command"),
        (vec!["frobnicate"], "unknown command"),
        (vec!["check"], "missing FILE"),
        (vec!["check", "--verbose", "x"], "unknown option"),
        (vec!["check", "a", "b"], "more than one FILE"),
        (
            vec!["check", "/nonexistent/tl-audit/log.json"],
            "cannot open",
        ),
        (vec!["check", dir.to_str().unwrap()], "read error"),
    ] {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let out = tl_audit(&args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    let help = tl_audit(&["--help".as_ref()]);
    assert_eq!(help.status.code(), Some(0));
    assert!(
        String::from_utf8(help.stdout)
            .unwrap()
            .starts_with("Usage: tl-audit check")
    );
    let version = tl_audit(&["-V".as_ref()]);
    assert_eq!(
        String::from_utf8(version.stdout).unwrap(),
        format!("tl-audit {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn quiet_prints_nothing_and_a_dashed_file_name_follows_double_dash() {
    let tmp = TempDir::new("quiet");
    let leaky = tmp.file("-leaky.json", leaky_log().as_bytes());
    let clean = tmp.file("clean.json", clean_log().as_bytes());
    let run = |args: &[&std::ffi::OsStr]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tl-audit"));
        let out = command.current_dir(&tmp.0).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, stdout, stderr) = run(&[
        "check".as_ref(),
        "-q".as_ref(),
        "--".as_ref(),
        "-leaky.json".as_ref(),
    ]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (Some(1), "", ""));
    let (code, stdout, _) = run(&["check".as_ref(), "--quiet".as_ref(), clean.as_os_str()]);
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    // Without `--`, the name reads as an unknown option.
    let (code, _, stderr) = run(&["check".as_ref(), "-leaky.json".as_ref()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("put `--` before it"), "{stderr}");
    // Nor does a name that is not UTF-8.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let odd = std::ffi::OsStr::from_bytes(b"-\xff.json");
        let (code, _, stderr) = run(&["check".as_ref(), odd]);
        assert_eq!(code, Some(2));
        assert!(stderr.contains("unknown option"), "{stderr}");
    }
    // Errors are still printed.
    let (code, _, stderr) = run(&["check".as_ref(), "-q".as_ref(), "missing.json".as_ref()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot open"), "{stderr}");
    assert!(leaky.exists());
}
