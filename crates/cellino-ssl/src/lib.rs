//! Self-supervised pretraining for cellino: DINOv2 / Cell-DINO / Bag-of-Channels (DINO + iBOT +
//! KoLeo, EMA teacher, multi-crop, resumable checkpoints).
//!
//! **Status: not implemented yet.** This crate is a placeholder in the workspace layout; it has no
//! public API. The backbone it will train, with stochastic depth, mask tokens and gradients to every
//! weight, is [`cellino_vit::DinoVisionTransformer`].
