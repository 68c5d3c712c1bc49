//! A synthetic cell dataset in memory: a nucleus disc, and a class-dependent protein pattern.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::Device;
use cellino_data::{CellAugmentation, DataError, Loader, MultiChannelImage, Sample, SampleSource, SampleType, Target};
use cellino_ssl::{SslConfig, augmentation, loader_config};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct SyntheticCells {
    pub n: usize,
    pub channels: usize,
    pub size: usize,
    pub classes: usize,
    pub seed: u64,
}

impl SyntheticCells {
    pub fn image(&self, index: usize) -> (Vec<f32>, usize) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ (index as u64).wrapping_mul(0x9E37_79B9));
        let class = index % self.classes;
        let s = self.size as f32;
        let (cx, cy) = (s * rng.random_range(0.35..0.65), s * rng.random_range(0.35..0.65));
        let r = s * rng.random_range(0.15..0.25);
        let mut data = vec![0f32; self.channels * self.size * self.size];
        for c in 0..self.channels {
            for y in 0..self.size {
                for x in 0..self.size {
                    let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() / r;
                    let v = match (c + class) % 5 {
                        0 => (d < 1.0) as u8 as f32,                                 // nucleus
                        1 => ((d > 1.2) && (d < 2.0)) as u8 as f32,                  // cytoplasm ring
                        2 => (((x / 3) + (y / 3)) % 4 == 0 && d < 2.0) as u8 as f32, // speckles
                        3 => (1.0 - d / 3.0).max(0.0),                               // diffuse
                        _ => ((d - 1.0).abs() < 0.2) as u8 as f32,                   // membrane
                    };
                    data[(c * self.size + y) * self.size + x] = 30.0 + 200.0 * v + rng.random_range(0.0..20.0);
                }
            }
        }
        (data, class)
    }
}

impl SampleSource for SyntheticCells {
    fn len(&self) -> usize {
        self.n
    }
    fn load(&self, index: usize) -> Result<Sample, DataError> {
        let (data, class) = self.image(index);
        Ok(Sample {
            image: MultiChannelImage::new(data, self.channels, self.size, self.size, SampleType::U8)?,
            target: Target::Class(class),
            index,
            image_index: index,
            channel: None,
        })
    }
}

pub fn tiny_config(overrides: &[&str]) -> SslConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/train/tiny_cpu_boc.yaml");
    SslConfig::from_yaml_file(path).unwrap().with_overrides(overrides).unwrap()
}

pub fn tiny_loader(config: &SslConfig, n: usize) -> Loader<SyntheticCells, CellAugmentation> {
    let source = SyntheticCells { n, channels: config.student.in_chans, size: 48, classes: 5, seed: config.train.seed };
    Loader::new(source, augmentation(config), loader_config(config, 2).unwrap(), Device::Cpu).unwrap()
}
