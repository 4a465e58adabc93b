"""Variational autoencoder: the model, its training recipe and the shipped checkpoint."""

from fel.vae.model import VAE, VAEConfig
from fel.vae.recipe import evaluate, export, load, load_pretrained, train_vae

__all__ = ["VAE", "VAEConfig", "evaluate", "export", "load", "load_pretrained", "train_vae"]
