//! The DINOv2 vision transformer (`DinoVisionTransformer` upstream), built from a state dict.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use cellino_kernels::BicubicResize;
use rand::rngs::StdRng;

use crate::block::{Attention, Block, DropPath, Ffn};
use crate::checkpoint::{StateDict, load_state_dict};
use crate::config::{Arch, FfnKind, PosEmbedInterpolation, VitConfig};
use crate::error::{Result, VitError};
use crate::infer::infer_config;
use crate::keys::expected_shapes;
use crate::layers::{LayerNorm, Linear};

/// DINOv2 LayerNorm epsilon.
const LN_EPS: f64 = 1e-6;

/// What `forward_features` returns, after the final LayerNorm (except `prenorm`).
#[derive(Debug, Clone)]
pub struct Features {
    /// `x_norm_clstoken`, (B, D).
    pub cls: Tensor,
    /// `x_norm_regtokens`, (B, R, D).
    pub registers: Tensor,
    /// `x_norm_patchtokens`, (B, N, D), patches in row-major grid order.
    pub patches: Tensor,
    /// `x_prenorm`, (B, 1 + R + N, D).
    pub prenorm: Tensor,
}

/// A DINOv2 backbone. Weights are plain tensors (pass `Var`-backed tensors to train them).
pub struct DinoVisionTransformer {
    config: VitConfig,
    /// Patch embedding as a matrix product: weight (D, C·p·p).
    patch_proj: Linear,
    cls_token: Tensor,
    pos_embed: Tensor,
    register_tokens: Option<Tensor>,
    mask_token: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
    /// Resamplers per target grid (h0, w0), built on first use.
    pos_resizers: Mutex<HashMap<(usize, usize), BicubicResize>>,
}

impl std::fmt::Debug for DinoVisionTransformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DinoVisionTransformer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl DinoVisionTransformer {
    /// Load a checkpoint file (any supported container and layout) and infer its architecture.
    /// `arch` or `num_heads` must be given: the head count is not stored in the weights.
    pub fn load(
        path: impl AsRef<Path>,
        arch: Option<Arch>,
        num_heads: Option<usize>,
        interpolation: PosEmbedInterpolation,
    ) -> Result<Self> {
        let sd = load_state_dict(path)?;
        let config = infer_config(&sd, arch, num_heads, interpolation)?;
        Self::from_state_dict(config, &sd)
    }

    /// Build from canonical DINOv2 tensors. Every expected key must be present with its exact shape,
    /// and no unknown backbone key may be left over; the error lists all offenders at once.
    pub fn from_state_dict(config: VitConfig, sd: &StateDict) -> Result<Self> {
        config.validate()?;
        check_keys(&config, sd)?;
        let get = |k: &str| -> Result<Tensor> {
            sd.get(k)
                .cloned()
                .ok_or_else(|| VitError::KeyMismatch { path: sd.source.clone(), details: format!("missing `{k}`") })
        };
        let opt = |k: &str| sd.get(k).cloned();
        let linear = |prefix: &str| -> Result<Linear> {
            Ok(Linear { weight: get(&format!("{prefix}.weight"))?, bias: opt(&format!("{prefix}.bias")) })
        };
        let norm = |prefix: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: get(&format!("{prefix}.weight"))?,
                bias: get(&format!("{prefix}.bias"))?,
                eps: LN_EPS,
            })
        };
        let (up, down) = match config.ffn {
            FfnKind::Mlp => ("mlp.fc1", "mlp.fc2"),
            FfnKind::SwiGlu => ("mlp.w12", "mlp.w3"),
        };
        let blocks = (0..config.depth)
            .map(|i| {
                let p = |s: &str| format!("blocks.{i}.{s}");
                Ok(Block {
                    norm1: norm(&p("norm1"))?,
                    attn: Attention {
                        qkv: linear(&p("attn.qkv"))?,
                        proj: linear(&p("attn.proj"))?,
                        num_heads: config.num_heads,
                    },
                    ls1: opt(&p("ls1.gamma")),
                    norm2: norm(&p("norm2"))?,
                    ffn: Ffn { kind: config.ffn, up: linear(&p(up))?, down: linear(&p(down))? },
                    ls2: opt(&p("ls2.gamma")),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let d = config.embed_dim;
        let patch_weight = get("patch_embed.proj.weight")?.reshape((d, ()))?;
        Ok(Self {
            patch_proj: Linear { weight: patch_weight, bias: Some(get("patch_embed.proj.bias")?) },
            cls_token: get("cls_token")?,
            pos_embed: get("pos_embed")?,
            register_tokens: opt("register_tokens"),
            mask_token: get("mask_token")?,
            blocks,
            norm: norm("norm")?,
            pos_resizers: Mutex::new(HashMap::new()),
            config,
        })
    }

    pub fn config(&self) -> &VitConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        self.cls_token.device()
    }

    /// The same backbone with the weights of every matrix product (patch embedding, qkv, proj,
    /// MLP) cast to `dtype`, as `torch.autocast` runs a model: those products, attention and the
    /// MLP activation compute in `dtype`, while LayerNorm, LayerScale, the position embedding and
    /// the residual stream stay in the source dtype. (A bf16 residual stream would round away
    /// branches scaled by LayerScale's 1e-5 init.) The casts are graph ops, so gradients flow
    /// back, in the source dtype, to `Var`-backed weights. The position resamplers are shared.
    pub fn autocast(&self, dtype: DType) -> Result<Self> {
        let linear = |l: &Linear| -> Result<Linear> {
            let cast = |t: &Tensor| t.to_dtype(dtype);
            Ok(Linear { weight: cast(&l.weight)?, bias: l.bias.as_ref().map(cast).transpose()? })
        };
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                Ok(Block {
                    attn: Attention { qkv: linear(&b.attn.qkv)?, proj: linear(&b.attn.proj)?, ..b.attn.clone() },
                    ffn: Ffn { kind: b.ffn.kind, up: linear(&b.ffn.up)?, down: linear(&b.ffn.down)? },
                    ..b.clone()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let resizers = self.pos_resizers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(Self {
            config: self.config.clone(),
            patch_proj: linear(&self.patch_proj)?,
            cls_token: self.cls_token.clone(),
            pos_embed: self.pos_embed.clone(),
            register_tokens: self.register_tokens.clone(),
            mask_token: self.mask_token.clone(),
            blocks,
            norm: self.norm.clone(),
            pos_resizers: Mutex::new(resizers),
        })
    }

    /// All backbone tensors under their DINOv2 names (flat `blocks.<i>.*` layout).
    pub fn state_dict(&self) -> Result<BTreeMap<String, Tensor>> {
        let c = &self.config;
        let mut m = BTreeMap::new();
        m.insert("cls_token".into(), self.cls_token.clone());
        m.insert("pos_embed".into(), self.pos_embed.clone());
        m.insert("mask_token".into(), self.mask_token.clone());
        if let Some(r) = &self.register_tokens {
            m.insert("register_tokens".into(), r.clone());
        }
        m.insert(
            "patch_embed.proj.weight".into(),
            self.patch_proj.weight.reshape((c.embed_dim, c.in_chans, c.patch_size, c.patch_size))?,
        );
        if let Some(b) = &self.patch_proj.bias {
            m.insert("patch_embed.proj.bias".into(), b.clone());
        }
        let (up, down) = match c.ffn {
            FfnKind::Mlp => ("mlp.fc1", "mlp.fc2"),
            FfnKind::SwiGlu => ("mlp.w12", "mlp.w3"),
        };
        for (i, b) in self.blocks.iter().enumerate() {
            let mut put_linear = |name: &str, l: &Linear| {
                m.insert(format!("blocks.{i}.{name}.weight"), l.weight.clone());
                if let Some(bias) = &l.bias {
                    m.insert(format!("blocks.{i}.{name}.bias"), bias.clone());
                }
            };
            put_linear("attn.qkv", &b.attn.qkv);
            put_linear("attn.proj", &b.attn.proj);
            put_linear(up, &b.ffn.up);
            put_linear(down, &b.ffn.down);
            for (name, n) in [("norm1", &b.norm1), ("norm2", &b.norm2)] {
                m.insert(format!("blocks.{i}.{name}.weight"), n.weight.clone());
                m.insert(format!("blocks.{i}.{name}.bias"), n.bias.clone());
            }
            for (name, g) in [("ls1.gamma", &b.ls1), ("ls2.gamma", &b.ls2)] {
                if let Some(g) = g {
                    m.insert(format!("blocks.{i}.{name}"), g.clone());
                }
            }
        }
        m.insert("norm.weight".into(), self.norm.weight.clone());
        m.insert("norm.bias".into(), self.norm.bias.clone());
        Ok(m)
    }

    /// Check an input batch (B, C, H, W) against the model: channel count and patch divisibility.
    pub fn check_input(&self, x: &Tensor) -> Result<(usize, usize, usize, usize)> {
        let (b, c, h, w) = x
            .dims4()
            .map_err(|_| VitError::input("image batch", format!("expected (B, C, H, W), got shape {:?}", x.dims())))?;
        let p = self.config.patch_size;
        if c != self.config.in_chans {
            let hint = if self.config.in_chans == 1 { " (Bag of Channels embeds each channel on its own)" } else { "" };
            return Err(VitError::input(
                "image batch",
                format!("it has {c} channels but the weights expect {}{hint}", self.config.in_chans),
            ));
        }
        if h == 0 || w == 0 || h % p != 0 || w % p != 0 {
            return Err(VitError::input(
                "image batch",
                format!("size {h}x{w} is not a positive multiple of the patch size {p}"),
            ));
        }
        if b == 0 {
            return Err(VitError::input("image batch", "it is empty"));
        }
        Ok((b, c, h, w))
    }

    /// `pos_embed` resampled for an `h × w` pixel input (DINOv2's `interpolate_pos_encoding`).
    fn pos_embed_for(&self, h: usize, w: usize) -> Result<Tensor> {
        let (p, m, d) = (self.config.patch_size, self.config.pos_grid, self.config.embed_dim);
        let (h0, w0) = (h / p, w / p);
        // Upstream returns the table unchanged only for a square input with the training grid.
        if h0 * w0 == m * m && h == w {
            return Ok(self.pos_embed.clone());
        }
        let resize = {
            let mut cache = self.pos_resizers.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(&(h0, w0)) {
                Some(r) => r.clone(),
                None => {
                    let i = self.config.interpolation;
                    let r = BicubicResize::dinov2_pos_embed(m, (h0, w0), i.offset, i.antialias, self.device())?;
                    cache.insert((h0, w0), r.clone());
                    r
                }
            }
        };
        // Upstream resamples in fp32 even under half precision; f64 stays f64.
        let dtype = self.pos_embed.dtype();
        let pos = if dtype == DType::F64 { self.pos_embed.clone() } else { self.pos_embed.to_dtype(DType::F32)? };
        let cls = pos.narrow(1, 0, 1)?;
        let grid = pos.narrow(1, 1, m * m)?.reshape((m, m, d))?;
        let grid = resize.apply_hwc(&grid)?.reshape((1, h0 * w0, d))?;
        Ok(Tensor::cat(&[cls, grid], 1)?.to_dtype(dtype)?)
    }

    /// Patch embedding, mask tokens, CLS, position embedding and registers: (B, 1 + R + N, D).
    /// `masks` is (B, N) with 1 where the patch is replaced by the mask token (iBOT).
    fn prepare_tokens(&self, x: &Tensor, masks: Option<&Tensor>) -> Result<Tensor> {
        let (b, c, h, w) = self.check_input(x)?;
        let (p, d) = (self.config.patch_size, self.config.embed_dim);
        let (h0, w0) = (h / p, w / p);
        // Conv2d with kernel = stride = p is a matrix product over (C, p, p) patches.
        let patches = x
            .reshape((b, c, h0, p, w0, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b * h0 * w0, c * p * p))?;
        // Back to the token dtype when the product ran autocast (a no-op otherwise).
        let mut tokens =
            self.patch_proj.forward(&patches)?.to_dtype(self.cls_token.dtype())?.reshape((b, h0 * w0, d))?;
        if let Some(masks) = masks {
            if masks.dims() != [b, h0 * w0] {
                return Err(VitError::input("mask", format!("shape {:?}, expected [{b}, {}]", masks.dims(), h0 * w0)));
            }
            let m = masks.ne(0u8)?.unsqueeze(2)?.broadcast_as((b, h0 * w0, d))?;
            let mask_token = self.mask_token.to_dtype(tokens.dtype())?.unsqueeze(0)?.broadcast_as((b, h0 * w0, d))?;
            tokens = m.where_cond(&mask_token, &tokens)?;
        }
        let cls = self.cls_token.broadcast_as((b, 1, d))?;
        let tokens = Tensor::cat(&[cls, tokens], 1)?.broadcast_add(&self.pos_embed_for(h, w)?)?;
        Ok(match &self.register_tokens {
            Some(reg) => {
                let r = reg.dim(1)?;
                let reg = reg.broadcast_as((b, r, d))?;
                let n = tokens.dim(1)?;
                Tensor::cat(&[tokens.narrow(1, 0, 1)?, reg, tokens.narrow(1, 1, n - 1)?], 1)?
            }
            None => tokens,
        })
    }

    fn split_normed(&self, x_norm: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let r = self.config.num_register_tokens;
        let n = x_norm.dim(1)?;
        Ok((x_norm.get_on_dim(1, 0)?, x_norm.narrow(1, 1, r)?, x_norm.narrow(1, 1 + r, n - 1 - r)?))
    }

    fn run(&self, x: &Tensor, masks: Option<&Tensor>, rng: Option<&mut StdRng>) -> Result<Features> {
        let mut tokens = self.prepare_tokens(x, masks)?;
        let mut drop_path = rng.map(|rng| DropPath { rate: self.config.drop_path_rate, rng });
        for blk in &self.blocks {
            tokens = blk.forward(tokens, drop_path.as_mut())?;
        }
        let x_norm = self.norm.forward(&tokens)?;
        let (cls, registers, patches) = self.split_normed(&x_norm)?;
        Ok(Features { cls, registers, patches, prenorm: tokens })
    }

    /// Inference forward (`forward_features` in eval mode): no stochastic depth.
    pub fn forward_features(&self, x: &Tensor, masks: Option<&Tensor>) -> Result<Features> {
        self.run(x, masks, None)
    }

    /// Training forward: stochastic depth (rate `config.drop_path_rate`) drawn from the caller's
    /// seeded RNG. Every op is differentiable in both modes.
    pub fn forward_features_train(&self, x: &Tensor, masks: Option<&Tensor>, rng: &mut StdRng) -> Result<Features> {
        self.run(x, masks, Some(rng))
    }

    /// Final-norm CLS token, (B, D) (upstream `forward` with an identity head).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_features(x, None)?.cls)
    }

    /// Outputs of the last `n` blocks, oldest first, as (patch tokens (B, N, D), CLS (B, D)),
    /// with the final LayerNorm applied to each when `norm` is set (upstream's default).
    pub fn get_intermediate_layers(&self, x: &Tensor, n: usize, norm: bool) -> Result<Vec<(Tensor, Tensor)>> {
        let depth = self.config.depth;
        if n == 0 || n > depth {
            return Err(VitError::input("n_last_blocks", format!("{n} is not in 1..={depth}")));
        }
        let mut tokens = self.prepare_tokens(x, None)?;
        let mut out = Vec::with_capacity(n);
        for (i, blk) in self.blocks.iter().enumerate() {
            tokens = blk.forward(tokens, None)?;
            if i >= depth - n {
                let t = if norm { self.norm.forward(&tokens)? } else { tokens.clone() };
                let (cls, _, patches) = self.split_normed(&t)?;
                out.push((patches, cls));
            }
        }
        Ok(out)
    }
}

fn check_keys(config: &VitConfig, sd: &StateDict) -> Result<()> {
    let expected = expected_shapes(config);
    let mut problems = vec![];
    let missing: Vec<&str> = expected.keys().filter(|k| !sd.tensors.contains_key(*k)).map(|k| k.as_str()).collect();
    if !missing.is_empty() {
        problems.push(format!("missing keys: {}", missing.join(", ")));
    }
    let unexpected: Vec<&str> = sd.tensors.keys().filter(|k| !expected.contains_key(*k)).map(|k| k.as_str()).collect();
    if !unexpected.is_empty() {
        problems.push(format!("unexpected keys: {}", unexpected.join(", ")));
    }
    let wrong: Vec<String> = expected
        .iter()
        .filter_map(|(k, shape)| {
            let t = sd.tensors.get(k)?;
            (t.dims() != shape.as_slice()).then(|| format!("`{k}` is {:?}, expected {shape:?}", t.dims()))
        })
        .collect();
    if !wrong.is_empty() {
        problems.push(format!("wrong shapes: {}", wrong.join("; ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(VitError::KeyMismatch { path: sd.source.clone(), details: problems.join(". ") })
    }
}
