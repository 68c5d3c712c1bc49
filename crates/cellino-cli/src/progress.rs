//! The progress bar of every long loop: count, rate and ETA on stderr, hidden when stderr is not
//! a terminal (logs, piped JSON and CI stay clean) or when `RUST_LOG` asks for warnings and errors
//! only.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `total` steps drawn with an indicatif `template` (the default style if it does not
/// parse).
pub fn with_template(total: u64, template: &str) -> ProgressBar {
    let visible = std::io::stderr().is_terminal() && crate::log::enabled(crate::log::Level::Info);
    let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}

/// A bar over `total` `unit`s, labelled `message`, with rate and ETA.
pub fn bar(total: usize, unit: &str, message: &str) -> ProgressBar {
    let template = format!("{{msg}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{per_sec}}, {{elapsed}}, eta {{eta}})");
    let bar = with_template(total as u64, &template);
    bar.set_message(message.to_string());
    bar
}

/// The `(done, total)` callback that the libraries' `*_reporting` functions take, moving `bar`:
/// it takes the total they report, which may differ from the estimate the bar was made with
/// (e.g. the linear probe trains on train minus the carved validation rows).
pub fn reporter(bar: &ProgressBar) -> impl FnMut(usize, usize) + Send + '_ {
    move |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }
}
