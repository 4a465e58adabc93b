# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Getting started: finely controlling synthesized faces
#
# This course teaches how to **edit a face by moving through the latent space of a generative
# model**: widen a smile, narrow the eyes, open the mouth, while the person stays the same. You
# will build the same kind of editor three times, with three families of deep generative models,
# and compare them on one yardstick.
#
# **In this notebook you will**
# 1. check that your environment works (versions, CPU or GPU, where data and checkpoints live);
# 2. meet the dataset: CelebA's file layout, here filled by *SynthFaces*, fel's offline stand-in;
# 3. see the goal of the course in one picture: the same face, more and more smiling;
# 4. learn how a slider drives a picture with `ipywidgets`, the mechanism of every editor to come.
#
# **Prerequisites:** Python and a little PyTorch. **Time to run:** under a minute on a laptop CPU
# (the first run of the course also renders the SynthFaces images, about two minutes, once).

# %% [markdown]
# ## The course map
#
# | notebook | model family | what you learn |
# |---|---|---|
# | **00 getting started** | — | environment, data, sliders |
# | 01 CelebA exploration | — | attributes, their frequencies and correlations, identities, the 148 crop |
# | 02 VAE | variational autoencoder | the ELBO, reconstructions, samples, bits/dim |
# | 03 VAE attribute vectors | VAE | mean-difference directions, `z + α·d`, a live slider editor |
# | 04 InterfaceGAN | GAN (Z and W spaces) | SVM boundaries, conditional editing across attributes |
# | 05 Glow | normalizing flow | change of variables, exact encoding, latent directions |
# | 06 comparison | all three | one yardstick, your own photo |
#
# Each notebook runs top to bottom on a 2-core CPU in about two minutes, using small checkpoints
# trained by fel's own recipes (`data/checkpoints/`). The ideas live in the notebooks; the
# plumbing (data loading, training loops, widgets) lives in the small library `fel`.

# %%
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

import fel
from fel.data import ATTRIBUTES, CelebA, default_root, is_synthfaces
from fel.data.synthfaces import counterfactual, read_factors, render_aligned, sample_factors
from fel.environment import environment_report
from fel.viz import png_bytes, show

# %% [markdown]
# ## 1. Your environment
#
# `fel.device()` picks the fastest device present: a CUDA GPU, then Apple's MPS, then the CPU.
# Every model in the course runs on whichever it finds; nothing assumes a GPU.

# %%
for key, value in environment_report().items():
    print(f"{key:14s} {value}")
device = fel.device()

# %% [markdown]
# ## 2. The data: CelebA's layout, SynthFaces inside
#
# [CelebA](https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) holds 202,599 aligned celebrity
# faces (178×218 pixels), each with 40 binary attributes such as `Smiling` or `Narrow_Eyes`. It
# cannot be downloaded on every machine, so fel renders **SynthFaces**: procedural faces written in
# exactly CelebA's files. Set `FEL_CELEBA_ROOT` to your own CelebA copy and every notebook uses it
# instead, unchanged.
#
# ```
# img_align_celeba/000001.jpg ...   178x218 aligned faces
# list_attr_celeba.txt              count, the 40 names, then "000001.jpg -1  1 ..." rows
# list_eval_partition.txt           0 train, 1 valid, 2 test
# identity_CelebA.txt               which person each image shows
# list_landmarks_align_celeba.txt   eyes, nose, mouth corners
# ```

# %%
root = default_root()
print("dataset:", root)
print(sorted(p.name for p in root.iterdir() if not p.name.startswith(".")))

# %% [markdown]
# `fel.data.CelebA` reads any CelebA-layout folder. Like most CelebA work it cuts the central
# 148×148 square out of each aligned image and resizes it to 64×64. The first read decodes the
# JPEGs in parallel into a uint8 cache; later reads come straight from memory.

# %%
valid = CelebA(root, split="valid", size=64)
image, labels = valid[0]
print(valid)
print("image:", tuple(image.shape), image.dtype, f"in [{image.min():.2f}, {image.max():.2f}]")
print("labels:", tuple(labels.shape), "->", [a for a, y in zip(valid.attr_names, labels) if y == 1])

# %%
# NBVAL_CHECK_OUTPUT
print(len(ATTRIBUTES), "attributes, e.g.", ", ".join(ATTRIBUTES[31:33]), "...")

# %%
smiling = valid.attr_names.index("Smiling")
faces = torch.stack([valid[i][0] for i in range(16)])
captions = ["smiling" if valid.labels[i, smiling] else "not smiling" for i in range(16)]
show(faces, nrow=8, title="16 validation faces and their Smiling label", labels=captions)
plt.show()

# %% [markdown]
# ## 3. The goal in one picture
#
# Because SynthFaces are rendered, we know the continuous *factors* behind every image, and we can
# render the **same face** with one factor changed: a *counterfactual*. Real datasets cannot do
# this. Below, one face with its `smile` factor moved from 0 to 1, nothing else touched.
#
# That is what the rest of the course builds from data alone: a model with latent code $z$, and a
# direction $d$ in latent space such that decoding $z + \alpha d$ for growing $\alpha$ looks like
# this strip, while the identity stays put.

# %%
if is_synthfaces(root):
    names, factors = read_factors(root)
    face = factors[names.index(valid.filenames[0])]  # the factors of the first validation face
else:  # real photos have no factors: the renderer draws a face of its own
    print(f"{root} has no SynthFaces factors (real photos): a SynthFaces face shows the idea")
    face = sample_factors(1, seed=0)[0]
strip = np.stack(
    [render_aligned(counterfactual(face, smile=s), size=64) for s in np.linspace(0, 1, 6)]
)
show(strip, nrow=6, width=10, title="ground truth: the same face, smile factor 0 → 1",
     labels=[f"smile {s:.1f}" for s in np.linspace(0, 1, 6)])  # fmt: skip
plt.show()

# %% [markdown]
# ## 4. How a slider drives a picture
#
# Every editor in the course is the same small loop: a slider's value changes, a callback computes
# a new image, and an `ipywidgets.Image` shows its PNG bytes. Here the "model" is the SynthFaces
# renderer itself; later it is a VAE, a GAN or a flow decoding $z + \alpha d$.
#
# Move the slider (in a live Jupyter session; on a static page you see the initial face).

# %%
picture = widgets.Image(value=png_bytes(render_aligned(face, 64), scale=3), format="png")
slider = widgets.FloatSlider(value=float(face["smile"]), min=0.0, max=1.0, step=0.05,
                             description="smile", continuous_update=True)  # fmt: skip


def update(change):
    edited = counterfactual(face, smile=change["new"])
    picture.value = png_bytes(render_aligned(edited, 64), scale=3)


slider.observe(update, names="value")
display(widgets.VBox([slider, picture]))

# %% [markdown]
# Widgets can also be driven from code, which is how fel tests its editors without a browser:
# set the value, and check that the picture's bytes changed.

# %%
before = picture.value
slider.value = 1.0 if slider.value < 0.5 else 0.0
print("image changed:", picture.value != before)

# %% [markdown]
# ## Exercises
#
# 1. Add a second slider for `mouth_open` and show both in one `VBox`, so that the callback edits
#    both factors.
# 2. Which five attributes are most frequent in the validation split? Which are never positive,
#    and why might that be on SynthFaces?
# 3. Put a tensor on `fel.device()` and time a 1024×1024 matrix product there.
#
# <details><summary>Solution 1</summary>
#
# ```python
# mouth = widgets.FloatSlider(value=float(face["mouth_open"]), min=0, max=1, step=0.05,
#                             description="mouth open")
# def update_both(_):
#     edited = counterfactual(face, smile=slider.value, mouth_open=mouth.value)
#     picture.value = png_bytes(render_aligned(edited, 64), scale=3)
# slider.observe(update_both, names="value")
# mouth.observe(update_both, names="value")
# display(widgets.VBox([slider, mouth, picture]))
# ```
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# freq = valid.labels.float().mean(0)
# order = freq.argsort(descending=True)
# print([(valid.attr_names[i], round(freq[i].item(), 2)) for i in order[:5]])
# print([a for a, p in zip(valid.attr_names, freq) if p == 0])
# ```
# The attributes that are never positive are those SynthFaces does not draw (such as
# `Attractive` or `Oval_Face`): it writes them as -1 rather than invent labels
# (`synthfaces.json` lists them).
# </details>
#
# <details><summary>Solution 3</summary>
#
# ```python
# import time
# a = torch.randn(1024, 1024, device=device)
# t = time.perf_counter(); (a @ a).sum().item(); print(f"{time.perf_counter() - t:.4f} s")
# ```
# </details>
#
# ## Summary
# - `fel.device()` finds your GPU when there is one; everything also runs on a CPU.
# - CelebA's layout is a folder of aligned JPEGs plus list files; `fel.data.CelebA` reads it
#   (real CelebA or SynthFaces) and crops 148 → 64 as most CelebA work does.
# - SynthFaces knows the truth behind each face, so edits can be scored against real
#   counterfactuals.
# - A slider editor is a callback from a value to PNG bytes.
#
# **Next:** `01_celeba_exploration`, a closer look at the attributes and why their correlations
# will matter when we look for editing directions.
#
# ## References
# - Z. Liu, P. Luo, X. Wang, X. Tang. *Deep Learning Face Attributes in the Wild* (CelebA), ICCV 2015.
# - [ipywidgets documentation](https://ipywidgets.readthedocs.io/).
