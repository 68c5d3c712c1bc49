//! `cellino crop`: single-cell crops from a field image around the cells of an instance mask or the
//! centroids of a CSV; a thin wrapper over `cellino_data::crop`.

use std::path::PathBuf;

use cellino_data::{
    BorderPolicy, CentroidCsv, ChannelRef, CropFormat, CropOptions, LabelImage, ReadOptions, centers_from_csv,
    centers_from_mask, crop_cells, read_image, write_crops,
};
use clap::{ArgGroup, Args, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Border {
    /// Fill the part outside the image with zeros.
    Pad,
    /// Leave out cells whose square does not fit (listed on stderr).
    Skip,
    /// Move the square inside the image (the cell is then off centre).
    Shift,
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("cells").required(true).args(["masks", "centroids"])),
    after_help = "Placement: the pixel nearest the centroid, (floor(y + 0.5), floor(x + 0.5)), is at index \
(size/2, size/2) of the crop (integer division); centroids are skimage regionprops centroids.\n\n\
Example:\n  cellino crop --input img2d.tif --masks mask2d.tif --size 64 --out crops/ --mask-others\n  \
cellino embed --model M --arch vit_small --input crops/manifest.csv --output emb.npy"
)]
pub struct CropArgs {
    /// The field image (TIFF, OME-TIFF, PNG, JPEG, .npy); all channels are kept unless --channels.
    #[arg(long)]
    input: PathBuf,
    /// Instance mask of the same height and width: 0 = background, k = cell k.
    #[arg(long)]
    masks: Option<PathBuf>,
    /// CSV with one row per cell and centroid_y / centroid_x columns (optional label and image columns).
    #[arg(long)]
    centroids: Option<PathBuf>,
    /// Keep only the CSV rows whose `image` column equals this (needed when the CSV covers several images).
    #[arg(long, conflicts_with = "masks")]
    csv_image: Option<String>,
    /// Crop height and width in pixels.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65536))]
    size: u64,
    /// Output folder (created): crops/<image>_<label>.tif, one multi-page TIFF per cell, and manifest.csv.
    #[arg(long)]
    out: PathBuf,
    /// What to do with crops that reach past the image border.
    #[arg(long, value_enum, default_value = "pad")]
    border: Border,
    /// Set the pixels of other cells to 0 (needs --masks).
    #[arg(long, conflicts_with = "centroids")]
    mask_others: bool,
    /// Channels to keep, by index or name, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    channels: Vec<String>,
}

pub fn run(args: &CropArgs) -> Result<(), String> {
    let read = ReadOptions::default();
    let mut image = read_image(&args.input, &read).map_err(|e| e.to_string())?;
    if !args.channels.is_empty() {
        let refs: Vec<ChannelRef> = args
            .channels
            .iter()
            .map(|c| {
                let Ok(r) = c.parse::<ChannelRef>();
                r
            })
            .collect();
        image = image.select(&refs).map_err(|e| e.to_string())?;
    }
    let mask = args.masks.as_ref().map(|m| LabelImage::read(m, &read)).transpose().map_err(|e| e.to_string())?;
    let centers = match (&mask, &args.centroids) {
        (Some(mask), _) => centers_from_mask(mask),
        (None, Some(csv)) => {
            let columns = CentroidCsv { image: args.csv_image.clone(), ..CentroidCsv::default() };
            centers_from_csv(csv, &columns).map_err(|e| e.to_string())?
        }
        (None, None) => return Err("give --masks or --centroids".into()),
    };
    let border = match args.border {
        Border::Pad => BorderPolicy::Pad,
        Border::Skip => BorderPolicy::Skip,
        Border::Shift => BorderPolicy::Shift,
    };
    let options =
        CropOptions { size: args.size as usize, border, mask_others: args.mask_others, source: args.input.clone() };
    let crops = crop_cells(&image, mask.as_ref(), &centers, &options).map_err(|e| e.to_string())?;
    if crops.crops.is_empty() {
        let why = if centers.is_empty() { "no cells (the mask is all background)" } else { "every cell was skipped" };
        return Err(format!("{}: {why}; nothing written", args.input.display()));
    }
    // Everything is checked and cut in memory first, so a bad input leaves no output folder behind;
    // a failure while writing removes the folder if this run created it.
    let created = !args.out.exists();
    let manifest = write_crops(&crops, &args.out, CropFormat::Tiff).map_err(|e| {
        if created {
            let _ = std::fs::remove_dir_all(&args.out);
        }
        e.to_string()
    })?;
    // A few examples are enough to check; the count is in the summary line.
    for s in crops.skipped.iter().take(5) {
        crate::info!(
            "skipped cell {} at (y {:.2}, x {:.2}): its crop reaches past the border",
            s.center.label,
            s.center.y,
            s.center.x
        );
    }
    if crops.skipped.len() > 5 {
        crate::info!("... and {} more skipped", crops.skipped.len() - 5);
    }
    let padded = crops.crops.iter().filter(|c| c.padded).count();
    crate::info!(
        "wrote {} crops of {}x{}x{} ({} zero-padded, {} skipped) and {}",
        crops.crops.len(),
        image.channels,
        args.size,
        args.size,
        padded,
        crops.skipped.len(),
        manifest.display()
    );
    Ok(())
}
