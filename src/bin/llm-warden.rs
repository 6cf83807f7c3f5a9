//! `llm-warden`: the native command line, built from the same config code as the filter.
//!
//!   llm-warden check-config FILE   every error with its field path; exit 1 if any
//!   llm-warden schema              JSON Schema of the plugin configuration
//!   llm-warden test FILE...        run policy test files (JSON or YAML); exit 1 on a failure
//!   llm-warden explain CONFIG REQUEST [--now UNIX_S]
//!                                  how one request is decided, rule by rule

use llm_warden::config::{Config, ConfigError};
use llm_warden::offline;
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: llm-warden check-config FILE | llm-warden schema | llm-warden test FILE... \
| llm-warden explain CONFIG REQUEST [--now UNIX_S] | llm-warden --version | llm-warden --help";

const HELP: &str = "llm-warden: the native command line of the llm-warden filter (same config code).

  llm-warden check-config FILE   check a plugin config (JSON or YAML; - reads stdin): every
                                 error with its field path, in one pass; exit 1 if any
  llm-warden schema              print the JSON Schema of the plugin config
  llm-warden test FILE...        run policy test files (JSON or YAML) through the filter's
                                 pipeline; one line per case; exit 1 on a failure
  llm-warden explain CONFIG REQUEST [--now UNIX_S]
                                 how one request is decided: the outcome, then each rule's
                                 verdict or the first condition it does not meet
  llm-warden --version           print the version

Exit status: 0 ok, 1 errors or failed cases, 2 usage or unreadable input.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["schema"] => {
            let schema = schemars::schema_for!(Config);
            match serde_json::to_string_pretty(&schema) {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("llm-warden: {e}");
                    ExitCode::from(2)
                }
            }
        }
        ["--version" | "-V" | "version"] => {
            println!("llm-warden {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["--help" | "-h" | "help"] => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        ["check-config", file] => check(file),
        ["test", files @ ..] if !files.is_empty() => test(files),
        ["explain", config, request] => explain(config, request, None),
        ["explain", config, request, "--now", now] => match now.parse() {
            Ok(n) => explain(config, request, Some(n)),
            Err(_) => {
                eprintln!("llm-warden: --now takes Unix seconds");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Runs each policy test file: one line per case, the expected and actual outcome of each
/// failing one, and a summary.
fn test(files: &[&str]) -> ExitCode {
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in files {
        let loaded = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {file}: {e}"))
            .and_then(|text| offline::parse_test_file(&text));
        let dir = Path::new(file).parent().unwrap_or(Path::new("."));
        let results = match loaded.and_then(|f| offline::run_file(&f, dir)) {
            Ok(r) => r,
            Err(e) => {
                println!("ERROR {file}: {e}");
                failed += 1;
                continue;
            }
        };
        for r in results {
            if r.failures.is_empty() {
                passed += 1;
                println!("PASS  {file}: {}", r.name);
            } else {
                failed += 1;
                println!("FAIL  {file}: {}", r.name);
                for f in &r.failures {
                    println!("        {f}");
                }
                println!("        actual: {}", r.outcome.summary());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn explain(config: &str, request: &str, now: Option<u64>) -> ExitCode {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {path}: {e}"))
            .and_then(|t| offline::parse_document(&t).map_err(|e| format!("{path}: {e}")))
    };
    let result = read(config).and_then(|c| {
        let r = read(request)?;
        let spec = serde_json::from_value(r).map_err(|e| format!("{request}: {e}"))?;
        offline::explain(&c, &spec, now)
    });
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("llm-warden: {e}");
            ExitCode::from(2)
        }
    }
}

/// The config as JSON bytes: a file or stdin (`-`), JSON as given or YAML converted.
/// Why a config could not be read: the input itself, or its syntax (a config error).
enum ReadError {
    Unreadable(String),
    Invalid(String),
}

fn read_config(file: &str) -> Result<Vec<u8>, ReadError> {
    let bytes = if file == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| ReadError::Unreadable(format!("cannot read stdin: {e}")))?;
        b
    } else {
        std::fs::read(file).map_err(|e| ReadError::Unreadable(format!("cannot read {file}: {e}")))?
    };
    let text = String::from_utf8_lossy(&bytes);
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') || serde_json::from_slice::<serde_json::Value>(&bytes).is_ok()
    {
        return Ok(bytes);
    }
    let value = offline::parse_document(&text).map_err(ReadError::Invalid)?;
    serde_json::to_vec(&value).map_err(|e| ReadError::Invalid(e.to_string()))
}

fn check(file: &str) -> ExitCode {
    let bytes = match read_config(file) {
        Ok(b) => b,
        Err(ReadError::Unreadable(e)) => {
            eprintln!("llm-warden: {e}");
            return ExitCode::from(2);
        }
        Err(ReadError::Invalid(e)) => {
            println!("{file}: {e}");
            println!("1 error");
            return ExitCode::from(1);
        }
    };
    let errors = all_errors(&bytes);
    if errors.is_empty() {
        println!("{file}: OK");
        return ExitCode::SUCCESS;
    }
    for e in &errors {
        println!("{file}: {e}");
    }
    println!(
        "{} error{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    ExitCode::from(1)
}

/// Config::parse stops at the first error; to report every one, the offending member is
/// removed and the document parsed again, until it passes or an error cannot be isolated.
fn all_errors(bytes: &[u8]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    // The document below is re-serialized from a parsed value, which keeps one copy of a
    // duplicated member: the duplicate itself is found on the bytes as given.
    if let Err(e) = Config::parse(bytes) {
        if e.message.starts_with("duplicate member") {
            errors.push(e);
        }
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Config::parse(bytes).err().into_iter().collect();
    };
    let mut removed_path: Option<String> = None;
    for _ in 0..50 {
        let text = doc.to_string();
        match Config::parse(text.as_bytes()) {
            Ok(_) => break,
            Err(e) => {
                // An error caused by our own removal (the parent now misses a field, or a
                // list became empty) is not the user's: stop there.
                let cascade = removed_path.as_ref().is_some_and(|r| {
                    r.starts_with(e.path.as_str())
                        && (e.message.starts_with("missing field") || e.message.starts_with("at least one"))
                });
                if cascade {
                    break;
                }
                let removed = remove_path(&mut doc, &e.path);
                removed_path = Some(e.path.clone());
                errors.push(e);
                if !removed {
                    break;
                }
            }
        }
    }
    errors
}

/// Removes the member at a path like `issuers[0].jwks.remote.cluster`.
fn remove_path(doc: &mut serde_json::Value, path: &str) -> bool {
    let mut parts: Vec<(String, Option<usize>)> = Vec::new();
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (name, rest) = seg.split_once('[').unwrap_or((seg, ""));
        parts.push((name.to_string(), None));
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            let i = idx.trim_end_matches(']').parse().ok();
            parts.push((String::new(), i));
        }
    }
    let Some((last, prefix)) = parts.split_last() else {
        return false;
    };
    let mut cur = doc;
    for (name, idx) in prefix {
        let next = match idx {
            Some(i) => cur.get_mut(*i),
            None => cur.get_mut(name.as_str()),
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match last {
        (_, Some(i)) => cur.as_array_mut().is_some_and(|a| {
            if *i < a.len() {
                a.remove(*i);
                true
            } else {
                false
            }
        }),
        (name, None) => cur.as_object_mut().and_then(|o| o.remove(name)).is_some(),
    }
}
