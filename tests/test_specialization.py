"""Specialisations on disk: exact round trip, and the token loads in stock diffusers."""

import torch
from diffusers import StableDiffusionPipeline

from tint.data.images import load_class_folders
from tint.diffusion.generation import GenerateConfig
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import specialize_to
from tint.diffusion.specialization import Specialization
from tint.diffusion.textual_inversion import TextualInversionConfig

CONFIG = GenerateConfig(ddim_steps=5, ti=TextualInversionConfig(steps=6))


def test_save_then_load_gives_back_the_same_specialisation(model, supports, tmp_path):
    specs = specialize_to(tmp_path, model, load_class_folders(supports), CONFIG, progress=False)
    for name, spec in specs.items():
        again = Specialization.load(tmp_path / name)
        assert again.supports == spec.supports and again.support_sizes == spec.support_sizes
        assert again.settings == spec.settings
        assert torch.equal(again.latents_T, spec.latents_T)
        assert torch.equal(again.null_embeddings, spec.null_embeddings)
        assert torch.equal(again.token_embedding.embedding, spec.token_embedding.embedding)
        assert again.null_embeddings.shape[:2] == (3, CONFIG.ddim_steps)


def test_the_saved_token_loads_in_a_stock_diffusers_pipeline(model_dir, supports, tmp_path):
    model = DiffusionModel.load(model_dir)
    specs = specialize_to(tmp_path, model, load_class_folders(supports), CONFIG, progress=False)
    pipe = StableDiffusionPipeline.from_pretrained(model_dir, local_files_only=True)
    for name, spec in specs.items():
        token = spec.token_embedding.token
        pipe.load_textual_inversion(tmp_path / name / "learned_embeds.safetensors", token=token)
        row = pipe.text_encoder.get_input_embeddings().weight[
            pipe.tokenizer.convert_tokens_to_ids(token)
        ]
        assert torch.equal(row, spec.token_embedding.embedding)
        prompt = spec.token_embedding.prompt
        with torch.no_grad():
            theirs = pipe.encode_prompt(prompt, "cpu", 1, False)[0]
            ours = model.encode_text([prompt])
        torch.testing.assert_close(theirs, ours)
