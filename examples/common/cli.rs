//! What both command-line examples share: parsing with clap, and its errors as one line.

use std::process::ExitCode;

/// The exit of `run`: success, or its message as one line on stderr and exit code 1.
pub fn exit(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the command line into `A`; on `--help`/`--version` prints and exits 0; on a bad
/// argument prints clap's first paragraph as one line and exits 2.
pub fn parse<A: clap::Parser>() -> Result<A, ExitCode> {
    A::try_parse().map_err(|e| {
        use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
        if matches!(e.kind(), DisplayHelp | DisplayVersion) {
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        let msg = e.to_string();
        let first: Vec<&str> = msg
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        eprintln!("{}", first.join(" "));
        ExitCode::from(2)
    })
}
