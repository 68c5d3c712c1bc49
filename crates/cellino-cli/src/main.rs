//! `cellino`: the command line of cellino. Thin by design: parsing, progress and error printing;
//! the work happens in the library crates.

mod atomic_write;
mod convert;
mod embed;
mod inspect;

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
    /// Convert a checkpoint to plain DINOv2 safetensors, or to the teacher_checkpoint key layout.
    Convert(convert::ConvertArgs),
    /// Describe an image (shape, dtype, channels with min/max/mean) or a checkpoint (layout, architecture).
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => embed::run(&args).map_err(|e| e.to_string()),
        Command::Convert(args) => convert::run(&args),
        Command::Inspect(args) => inspect::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
