//! The progress bar of every long loop: count, rate and ETA on stderr, hidden when stderr is not
//! a terminal (logs and CI stay clean) or when `RUST_LOG` asks for warnings and errors only.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `total` `unit`s, labelled `message`.
pub fn bar(total: usize, unit: &str, message: &str) -> ProgressBar {
    let visible = std::io::stderr().is_terminal() && crate::log::enabled(crate::log::Level::Info);
    let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(total as u64), target);
    let template = format!("{{msg}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{per_sec}}, {{elapsed}}, eta {{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_string());
    bar
}
