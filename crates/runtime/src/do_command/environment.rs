//! `moat do`'s environment, never moat's own: Docker's PATH, HOME, LANG,
//! TERM for a terminal, then `--env-file`s and `--env`s in order.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::DoError;

/// The PATH of a sandbox, as Docker sets it.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The most an `--env-file` may hold: it is for variables, and a bound keeps
/// `--env-file /dev/zero` from eating the host's memory.
const MAX_ENV_FILE: u64 = 1 << 20;

/// Why a variable or a line of an env file was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// `=VALUE` with no name.
    #[error("no variable name; give VAR=VALUE or VAR")]
    NoName,
    /// A line of an env file holds a NUL, which no variable can.
    #[error("line {0} holds a NUL byte")]
    Nul(usize),
    /// A name with a blank in it, which Docker refuses.
    #[error("line {line}: the variable name {name:?} holds a space or tab")]
    NameWithBlank {
        /// The line number.
        line: usize,
        /// The name.
        name: String,
    },
    /// A line of an env file whose variable is refused.
    #[error("line {line}: {source}")]
    Line {
        /// The line number.
        line: usize,
        /// Why.
        source: Box<EnvError>,
    },
}

/// A variable of the caller's environment.
pub(super) fn caller_variable(name: &[u8]) -> Option<Vec<u8>> {
    std::env::vars_os().find(|(k, _)| k.as_bytes() == name).map(|(_, v)| v.into_vec())
}

/// The sandbox's environment, never moat's own: PATH, HOME (/root, as the
/// app runs as root), LANG=C.UTF-8, TERM if stdin or stdout is a terminal,
/// then each `--env-file` and each `--env` in order, a later VAR replacing
/// an earlier one. `caller` looks up the caller's variables for `VAR` alone.
pub(super) fn environment(
    env_files: &[PathBuf],
    env_args: &[OsString],
    tty: bool,
    caller: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, DoError> {
    let mut env = Environment::default();
    env.set(b"PATH", DEFAULT_PATH.as_bytes());
    env.set(b"HOME", b"/root");
    env.set(b"LANG", b"C.UTF-8");
    if tty {
        // The app writes to the caller's own terminal (moat do makes no
        // pseudo-terminal), which the caller's TERM describes best.
        let term = caller(b"TERM").filter(|t| is_terminal_name(t)).unwrap_or_else(|| b"xterm".to_vec());
        env.set(b"TERM", &term);
    }
    for path in env_files {
        let text = read_env_file(path)?;
        env.add_file(&text, caller).map_err(|source| DoError::EnvFile { path: path.clone(), source })?;
    }
    for arg in env_args {
        env.add_arg(arg.as_bytes(), caller)
            .map_err(|source| DoError::EnvArg { arg: String::from_utf8_lossy(arg.as_bytes()).into_owned(), source })?;
    }
    Ok(env.into_envp())
}

/// Whether a TERM value is a plain terminal name (as in terminfo), not
/// something that reaches further than naming the terminal.
fn is_terminal_name(term: &[u8]) -> bool {
    (1..=64).contains(&term.len()) && term.iter().all(|&b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

fn read_env_file(path: &Path) -> Result<Vec<u8>, DoError> {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_ENV_FILE + 1).read_to_end(&mut text))
        .map_err(|source| DoError::EnvFileRead { path: path.to_owned(), source })?;
    if text.len() as u64 > MAX_ENV_FILE {
        return Err(DoError::EnvFileTooLarge(path.to_owned()));
    }
    Ok(text)
}

/// Variables in the order first set; setting one again replaces its value.
#[derive(Debug, Default)]
struct Environment(Vec<(Vec<u8>, Vec<u8>)>);

impl Environment {
    fn set(&mut self, name: &[u8], value: &[u8]) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_vec(),
            None => self.0.push((name.to_vec(), value.to_vec())),
        }
    }

    /// `VAR=VALUE`, or `VAR` for the caller's VAR (nothing if unset), as
    /// Docker's `--env`.
    fn add_arg(&mut self, arg: &[u8], caller: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Result<(), EnvError> {
        let (name, value) = match arg.iter().position(|&b| b == b'=') {
            Some(i) => (&arg[..i], Some(&arg[i + 1..])),
            None => (arg, None),
        };
        if name.is_empty() {
            return Err(EnvError::NoName);
        }
        if let Some(value) = value.map(<[u8]>::to_vec).or_else(|| caller(name)) {
            self.set(name, &value);
        }
        Ok(())
    }

    /// Docker's env-file format: leading blanks dropped; blank lines and
    /// lines starting with `#` skipped; `VAR=VALUE` (VALUE verbatim, to the
    /// end of the line) or `VAR` alone for the caller's VAR; a name holding
    /// a space or tab is an error.
    fn add_file(&mut self, text: &[u8], caller: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Result<(), EnvError> {
        let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
        for (number, line) in text.split(|&b| b == b'\n').enumerate() {
            let number = number + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = &line[line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len())..];
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            if line.contains(&0) {
                return Err(EnvError::Nul(number));
            }
            let name = line.split(|&b| b == b'=').next().unwrap_or_default();
            if name.iter().any(|&b| b == b' ' || b == b'\t') {
                let name = String::from_utf8_lossy(name).into_owned();
                return Err(EnvError::NameWithBlank { line: number, name });
            }
            self.add_arg(line, caller).map_err(|e| EnvError::Line { line: number, source: Box::new(e) })?;
        }
        Ok(())
    }

    fn into_envp(self) -> Vec<Vec<u8>> {
        self.0
            .into_iter()
            .map(|(mut name, value)| {
                name.push(b'=');
                name.extend_from_slice(&value);
                name
            })
            .collect()
    }
}
