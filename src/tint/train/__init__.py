"""Training: the one loop (`trainer`) and what is trained with it, the diffusion model, the base
classifiers and the distilled students."""
