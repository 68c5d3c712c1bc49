//! `cellino`: the command line of cellino. Thin by design: parsing, progress and error printing;
//! the work happens in the library crates.

mod atomic_write;
mod embed;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cellino",
    version,
    about = "Self-supervised learning for multi-channel microscopy (Cell-DINO, Bag of Channels)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed a raw float32 (B, C, H, W) .npy batch with a DINOv2 / Cell-DINO backbone.
    Embed(embed::EmbedArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => embed::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
