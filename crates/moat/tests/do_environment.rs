//! `moat do`'s environment: the sandbox gets a clean one (PATH, HOME, LANG,
//! TERM only with a terminal) plus `--env` and `--env-file`, never moat's own.
//!
//! Run as root, on the host's root file system (coreutils' `env` prints the
//! environment the sandbox's first program was given).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::process::Command;

use common::{moat_command, Output, Running, TempDir};

/// What moat itself is given on top of the test environment: a secret that
/// must never reach the sandbox, a TERM that must not either (no terminal),
/// and a variable for `--env NAME` to pass on.
const CALLER_ENV: &[(&str, &str)] =
    &[("MOAT_TEST_SECRET", "hunter2"), ("TERM", "vt100"), ("MOAT_TEST_PASSED", "passed on")];

/// The environment of a sandbox given no `--env` and no terminal.
const CLEAN: &[&str] =
    &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"];

/// `moat do ARGS... -- env` with CALLER_ENV in moat's environment.
fn moat_do_env(args: &[&str]) -> Output {
    let mut full = vec!["do"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--", "env"]);
    let mut command = moat_command(&full);
    command.envs(CALLER_ENV.iter().copied());
    Running::spawn(command, &format!("moat {}", full.join(" ")), false).finish()
}

/// The variables `env` printed, one per line.
fn variables(out: &Output) -> BTreeSet<String> {
    assert_eq!(out.status, 0, "{}", out.describe());
    out.stdout.lines().map(str::to_owned).collect()
}

fn set(vars: &[&str]) -> BTreeSet<String> {
    vars.iter().map(|v| (*v).to_owned()).collect()
}

#[test]
fn the_sandbox_sees_a_clean_environment_not_moats() {
    let out = moat_do_env(&[]);
    assert_eq!(variables(&out), set(CLEAN), "{}", out.describe());
}

#[test]
fn env_sets_replaces_and_passes_on_variables() {
    let out = moat_do_env(&[
        "--env",
        "GREETING=hello world",
        "-e",
        "EMPTY=",
        "-e",
        "EQUALS=a=b",
        "-e",
        "PATH=/bin",
        "-e",
        "MOAT_TEST_PASSED",
        "-e",
        "MOAT_TEST_NEVER_SET",
        "-e",
        "GREETING=replaced",
    ]);
    assert_eq!(
        variables(&out),
        set(&[
            "PATH=/bin",
            "HOME=/root",
            "LANG=C.UTF-8",
            "GREETING=replaced",
            "EMPTY=",
            "EQUALS=a=b",
            "MOAT_TEST_PASSED=passed on"
        ]),
        "{}",
        out.describe()
    );
}

#[test]
fn env_name_alone_passes_the_callers_secret_only_when_asked() {
    let out = moat_do_env(&["-e", "MOAT_TEST_SECRET"]);
    let mut expected = set(CLEAN);
    expected.insert("MOAT_TEST_SECRET=hunter2".to_owned());
    assert_eq!(variables(&out), expected, "{}", out.describe());
}

#[test]
fn env_file_in_dockers_format() {
    let dir = TempDir::new("env-file");
    let first = dir.path().join("first.env");
    let second = dir.path().join("second.env");
    fs::write(
        &first,
        "\u{feff}# a comment\n\
         \n\
         \x20 \tINDENTED=value with trailing blanks  \n\
         \x20 # an indented comment\n\
         OVERRIDDEN=from the first file\n\
         QUOTES=\"kept\" 'as is'\n\
         WINDOWS=crlf\r\n\
         MOAT_TEST_PASSED\n\
         MOAT_TEST_NEVER_SET\n\
         HOME=/home/app\n\
         NO_NEWLINE_AFTER=next file",
    )
    .expect("write the first env file");
    fs::write(&second, "OVERRIDDEN=from the second file\nFROM_ENV_FLAG=file\n").expect("write the second env file");
    let out = moat_do_env(&[
        "--env-file",
        first.to_str().expect("utf-8"),
        "--env-file",
        second.to_str().expect("utf-8"),
        "-e",
        "FROM_ENV_FLAG=flag",
    ]);
    assert_eq!(
        variables(&out),
        set(&[
            CLEAN[0],
            "HOME=/home/app",
            "LANG=C.UTF-8",
            "INDENTED=value with trailing blanks  ",
            "OVERRIDDEN=from the second file",
            "QUOTES=\"kept\" 'as is'",
            "WINDOWS=crlf",
            "MOAT_TEST_PASSED=passed on",
            "NO_NEWLINE_AFTER=next file",
            "FROM_ENV_FLAG=flag",
        ]),
        "{}",
        out.describe()
    );
}

/// An env file that can be read once only, as bash's `--env-file <(...)`
/// gives: a pipe, inherited by moat as /dev/fd/N. (Only the read end is
/// inherited, so no other test's child holds the write end open.)
#[test]
fn env_file_from_a_pipe() {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
    use std::os::fd::AsRawFd;
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
    fcntl(read.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty())).expect("let moat inherit the pipe");
    fs::File::from(write).write_all(b"FROM_PIPE=yes\n").expect("write the pipe");
    let out = moat_do_env(&["--env-file", &format!("/dev/fd/{}", read.as_raw_fd())]);
    drop(read);
    let mut expected = set(CLEAN);
    expected.insert("FROM_PIPE=yes".to_owned());
    assert_eq!(variables(&out), expected, "{}", out.describe());
}

/// Each bad input: one line on stderr that names the option, status 125,
/// and the command never runs.
#[test]
fn bad_env_input_is_refused_with_status_125() {
    let dir = TempDir::new("env-file-bad");
    let spaced = dir.path().join("spaced.env");
    fs::write(&spaced, "GOOD=1\nBAD NAME=2\n").expect("write");
    let nameless = dir.path().join("nameless.env");
    fs::write(&nameless, "=value\n").expect("write");
    let nul = dir.path().join("nul.env");
    fs::write(&nul, "A=x\0y\n").expect("write");
    let missing = dir.path().join("missing.env");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["-e".into(), "=value".into()], "--env \"=value\": no variable name"),
        (vec!["--env".into(), String::new()], "--env \"\": no variable name"),
        (vec!["--env-file".into(), path(&missing)], "cannot read it"),
        (vec!["--env-file".into(), path(dir.path())], "cannot read it"),
        (vec!["--env-file".into(), path(&spaced)], "line 2: the variable name \"BAD NAME\" holds a space or tab"),
        (vec!["--env-file".into(), path(&nameless)], "line 1: no variable name"),
        (vec!["--env-file".into(), path(&nul)], "line 1 holds a NUL byte"),
        (vec!["--env-file".into(), "/dev/zero".into()], "larger than 1 MiB"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["do".to_owned()];
        args.extend(flags);
        args.extend(["--", "echo", "the command ran"].map(str::to_owned));
        let what = format!("moat {}", args.join(" "));
        let out = Running::spawn(moat_command(&args), &what, false).finish();
        assert_eq!(out.status, 125, "{what}\n{}", out.describe());
        assert!(out.stdout.is_empty(), "{what}\n{}", out.describe());
        assert_eq!(out.stderr.lines().count(), 1, "{what}: not one line\n{}", out.describe());
        assert!(
            out.stderr.starts_with("moat: --env") && out.stderr.contains(message),
            "{what}: expected {message:?}\n{}",
            out.describe()
        );
    }
}

/// With a terminal on stdin and stdout, the app gets TERM: the caller's if
/// it is a plain terminal name, else xterm. `script` (util-linux) gives
/// `moat do` a pseudo-terminal.
#[test]
fn term_is_set_only_with_a_terminal() {
    for (caller_term, expected) in [("screen-256color", "screen-256color"), ("evil;name", "xterm")] {
        let moat = common::moat_binary();
        let mut command = Command::new("script");
        command.args(["--quiet", "--return", "--command", &format!("{moat} do -- env"), "/dev/null"]);
        // script runs the command through $SHELL.
        command
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("SHELL", "/bin/sh")
            .env("TERM", caller_term)
            .env("MOAT_TEST_SECRET", "hunter2");
        let out = Running::spawn(command, &format!("script moat do -- env (TERM={caller_term})"), false).finish();
        assert_eq!(out.status, 0, "is util-linux's script installed?\n{}", out.describe());
        // The terminal carries moat's stderr too: its diagnostics are not variables.
        let seen: BTreeSet<String> = out
            .stdout
            .lines()
            .map(|l| l.trim_end_matches('\r').to_owned())
            .filter(|l| !l.starts_with("moat: "))
            .collect();
        let mut want = set(CLEAN);
        want.insert(format!("TERM={expected}"));
        assert_eq!(seen, want, "{}", out.describe());
    }
}
