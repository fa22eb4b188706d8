"""The scale of the cached ELMo vectors against the learned Embedding's (docs/results.md, tries of 2026-12-02).
Run from the pipeline's folder: python scale_check.py data/elmo_imdb/train.h5 <tries>/default/cnn-base-42/model.keras"""
import sys

import h5py
import keras
import numpy as np

from elmo_imdb import layers  # noqa: F401  (the custom layers of saved models)

with h5py.File(sys.argv[1]) as f:
    x = f["features"][:2000].astype(np.float32)
tokens = x[np.abs(x).sum(-1) > 0]
print(f"ELMo, first 2,000 training reviews, {len(tokens):,} real tokens: mean norm {np.linalg.norm(tokens, axis=1).mean():.2f}, "
      f"per-dimension std (mean over dims) {tokens.std(0).mean():.3f}, largest |x| {np.abs(tokens).max():.2f}")
embedding = keras.models.load_model(sys.argv[2]).get_layer("embedding").get_weights()[0]
print(f"Embedding of {sys.argv[2].split('/')[-2]}: mean row norm {np.linalg.norm(embedding, axis=1).mean():.3f}, std {embedding.std():.4f}")
