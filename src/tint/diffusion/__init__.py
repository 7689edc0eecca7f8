"""Stable-Diffusion-format models and the TINT method: DDIM, textual inversion, null-text
inversion, sampling, and the pipeline that composes them."""
