//! `RUST_LOG`-style verbosity of the messages `cellino` prints on stderr: `RUST_LOG=error` keeps
//! only the final error line, `warn` adds warnings, `info` (the default) adds progress notes and
//! "wrote …" lines, `debug` is accepted for the future. `RUST_LOG=cellino=warn` and lists such as
//! `info,cellino=warn` work too (the `cellino` entry wins). Errors always print.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

fn parse_level(s: &str) -> Option<Level> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" | "error" => Some(Level::Error),
        "warn" => Some(Level::Warn),
        "info" => Some(Level::Info),
        "debug" | "trace" => Some(Level::Debug),
        _ => None,
    }
}

/// The level a `RUST_LOG` value selects for `cellino`; `Info` when it says nothing usable.
pub fn level_from(spec: &str) -> Level {
    let mut global = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some((target, level)) if target.trim() == "cellino" || target.trim().starts_with("cellino") => {
                if let Some(l) = parse_level(level) {
                    return l;
                }
            }
            Some(_) => {}
            None => global = parse_level(part).or(global),
        }
    }
    global.unwrap_or(Level::Info)
}

/// Whether messages at `level` are shown (read from `RUST_LOG` once).
pub fn enabled(level: Level) -> bool {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    level <= *LEVEL.get_or_init(|| std::env::var("RUST_LOG").map(|s| level_from(&s)).unwrap_or(Level::Info))
}

/// A progress note on stderr (shown at `info` and above).
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Info) {
            eprintln!($($arg)*);
        }
    };
}

/// A warning on stderr (shown at `warn` and above).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Warn) {
            eprintln!($($arg)*);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_values() {
        assert_eq!(level_from("error"), Level::Error);
        assert_eq!(level_from("WARN"), Level::Warn);
        assert_eq!(level_from("info,cellino=warn"), Level::Warn);
        assert_eq!(level_from("cellino_cli=debug"), Level::Debug);
        assert_eq!(level_from("candle=debug"), Level::Info);
        assert_eq!(level_from("nonsense"), Level::Info);
        assert_eq!(level_from(""), Level::Info);
    }
}
