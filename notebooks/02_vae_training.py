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
# # 02 · A variational autoencoder for faces
#
# A VAE learns two maps at once: an **encoder** that turns a face into a distribution over latent
# codes $z$, and a **decoder** that turns a code back into a face. Trained well, its latent space
# is smooth enough that moving a code a little changes the face a little: the property every
# editor in this course relies on.
#
# **You will**
# 1. write the evidence lower bound (ELBO) in a few lines and check it against the library;
# 2. watch a VAE start learning, then load the shipped model trained by fel's recipe;
# 3. look at reconstructions, samples and interpolations, and read bits/dim;
# 4. see what the KL term and the decoder's noise level do.
#
# **Prerequisites:** notebooks 00–01; PyTorch basics. **Time to run:** about two minutes on a
# 2-core CPU (set `RETRAIN = True` to train from scratch instead: about 40 minutes on CPU,
# a few on a GPU).

# %%
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import fel
from fel.checkpoints import export_checkpoint
from fel.data import CelebA, default_root
from fel.directions import lerp, slerp
from fel.training import TrainConfig
from fel.vae import VAE, VAEConfig, evaluate, load_pretrained, train_vae
from fel.vae.recipe import TRAINING
from fel.viz import show
from fel.widgets import strip

RETRAIN = False  # True: train with the full recipe below instead of loading data/checkpoints/vae.pt
device = fel.device()
root = default_root()
size = VAEConfig().size if RETRAIN else load_pretrained(device).config.size  # the model's pixels
test = CelebA(root, split="test", size=size)
x = torch.from_numpy(test.images[:16].copy()).float() / 255
print("device:", device, "| test faces:", len(test))

# %% [markdown]
# ## 1. The model and its objective
#
# The encoder gives the mean and log-variance of a Gaussian posterior $q_\phi(z\mid x)$; the
# decoder gives the mean $\mu_\theta(z)$ of a Gaussian likelihood with one learned standard
# deviation $\sigma$. For every face $x$ the ELBO bounds the log-likelihood from below:
#
# $$\log p(x) \;\ge\; \mathbb{E}_{q(z\mid x)}\big[\log \mathcal N(x;\mu_\theta(z),\sigma^2 I)\big]
#   \;-\; \mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal N(0, I)\big).$$
#
# The KL between two Gaussians has a closed form, and a sample $z=\mu+\sigma_q\odot\epsilon$
# (the *reparameterisation trick*) lets gradients flow through the expectation. In code:

# %%
torch.manual_seed(0)
tiny = VAE(VAEConfig(size=size, latent=128, width=8))
mu, logvar = tiny.posterior(x)
z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation
recon = tiny.decode(z)

kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)  # KL(q || N(0, I)), per image
sigma = tiny.log_sigma.exp()
x_deq = x + torch.rand_like(x) / 32  # images live on a 5-bit grid; spread each bin uniformly
nll = (
    (0.5 * ((x_deq - recon) / sigma) ** 2 + torch.log(sigma) + 0.5 * math.log(2 * math.pi))
    .flatten(1)
    .sum(1)
)
elbo = -(nll + kl)
print(
    f"by hand: ELBO {elbo.mean():.0f} nats/image = reconstruction {-nll.mean():.0f} - KL {kl.mean():.1f}"
)

# %% [markdown]
# **Bits per dimension** turn the ELBO into a number comparable across image sizes and with
# Glow (notebook 05): the negative log-likelihood of the quantised image, per colour value, in
# bits. With $D = 3\cdot64\cdot64$ values on a grid of $2^5$ levels:
#
# $$\text{bits/dim} = \frac{-\text{ELBO} + D \log 2^{5}}{D \ln 2}.$$
#
# A model that knew nothing (uniform over the grid) scores exactly 5.

# %%
D = x[0].numel()
print(
    f"bits/dim of the untrained model: {((-elbo.mean() + D * math.log(32)) / (D * math.log(2))):.3f}"
)

# %% [markdown]
# ## 2. Training: a short demo, then the shipped model
#
# `fel.training.train` is the loop every model in the course uses: progress bar, checkpoints
# written atomically, exact resume, a guard that stops on NaN, several GPUs through `torchrun`.
# Here are a few dozen steps on a small model, just to see the loss fall:

# %%
demo = train_vae(root, "runs/vae_demo", TrainConfig(epochs=1, batch_size=32, lr=2e-3, warmup_steps=5),
                 VAEConfig(size=size, latent=128, width=8), max_steps=40)  # fmt: skip
print(
    "bits/dim over the demo:", [round(h["bpd"], 2) for h in demo["meta"]["history"] if "bpd" in h]
)

# %% [markdown]
# The real recipe (`fel.vae.recipe.TRAINING` with `VAEConfig()`'s defaults, which are also
# `python -m fel train vae`'s) runs for 20 epochs on the 24,000 training faces. It is what
# produced the shipped checkpoint (the exact command is stored in it). With `RETRAIN = True` the
# model is exported to `runs/checkpoints/vae.pt`; start Jupyter with
# `FEL_CHECKPOINTS=runs/checkpoints` (from the notebooks folder) and notebook 03 edits with it.

# %%
if RETRAIN:
    stopped = Path("runs/vae/last.pt").is_file()  # an interrupted run goes on where it was
    result = train_vae(root, "runs/vae", TRAINING, VAEConfig(), resume=stopped)
    print("exported", export_checkpoint(result, "runs/checkpoints/vae.pt"))
    model = VAE(VAEConfig(**result["config"]))
    model.load_state_dict(result["model"])
    model = model.to(device).eval()
    model.meta = result["meta"]
else:
    model = load_pretrained(device)
print(model.meta.get("command", "(trained in this session)"))
print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
      f"trained for {model.meta['train_seconds'] / 60:.0f} min on {model.meta['train_images']} faces")  # fmt: skip

# %%
history = model.meta["history"]
train_pts = [(h["epoch"], h["bpd"]) for h in history if "bpd" in h]
valid_pts = [(h["epoch"], h["valid_bpd"]) for h in history if "valid_bpd" in h]
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(*zip(*train_pts), lw=1, label="train (running mean, 10 steps)")
ax.plot(*zip(*valid_pts), "o-", label="valid (1000 faces)")
ax.set_xlabel("epoch")
ax.set_ylabel("bits/dim (5-bit)")
ax.set_ylim(top=min(5.0, max(v for _, v in train_pts)))
ax.legend()
ax.set_title("VAE training curve")
plt.show()

# %% [markdown]
# ## 3. What the model learned
#
# **Reconstructions**: test faces (never seen in training, nor their identities) on the top row,
# decoded posterior means below.

# %%
with torch.no_grad():
    recon = model.decode(model.encode(x.to(device))).cpu()
show(
    torch.cat([x[:8], recon[:8]]),
    nrow=8,
    title="test faces (top) and their reconstructions (bottom)",
)
plt.show()

# %% [markdown]
# **Samples**. Decoding draws from the prior $\mathcal N(0, I)$ (top row) gives muddy faces: the
# training codes do not fill the prior evenly, and draws land in "holes" the decoder never learned.
# The recipe therefore fits a Gaussian to the training codes after training (*ex-post density
# estimation*, Ghosh et al. 2020) and `sample_latent` draws from it (middle row); a lower
# *temperature* shrinks draws towards the mean for more typical faces (bottom row). The ELBO and
# bits/dim still use $\mathcal N(0, I)$, the prior the model was trained with.

# %%
g = torch.Generator().manual_seed(1)
eps = torch.randn(8, model.config.latent, generator=g)
with torch.no_grad():
    standard = model.decode(eps.to(device)).cpu()
    fitted = model.decode(model.sample_latent(8, generator=torch.Generator().manual_seed(1))).cpu()
    cool = model.decode(
        model.sample_latent(8, generator=torch.Generator().manual_seed(1), temperature=0.7)
    ).cpu()
show(
    torch.cat([standard, fitted, cool]),
    nrow=8,
    title="samples: N(0, I) / fitted Gaussian / fitted, temperature 0.7",
)
plt.show()

# %% [markdown]
# **Latent traversals**: hold a test face's code fixed and move *one* coordinate from −3 to +3,
# for the three coordinates the model uses most (largest average KL). Each changes the face only
# a little, and in several ways at once: with 128 coordinates sharing the work, the axes of a VAE
# are not attributes, which is why notebook 03 *finds* attribute directions instead.

# %%
with torch.no_grad():
    mu_t, logvar_t = model.posterior(x.to(device))
kl_per_dim = (0.5 * (mu_t**2 + logvar_t.exp() - 1 - logvar_t)).mean(0).cpu()
top = kl_per_dim.argsort(descending=True)[:3]
rows = []
for k in top:
    axis = torch.zeros(model.config.latent)
    axis[k] = 1.0
    rows.append(strip(model, mu_t[0], axis, torch.linspace(-3, 3, 8).tolist()))
show(
    torch.cat(rows),
    nrow=8,
    title=f"traversals of latent coordinates {top.tolist()} (most used first)",
)
plt.show()

# %% [markdown]
# **Interpolation** between two test faces. Straight lines (lerp) pass through codes with a
# smaller norm than typical samples; spherical interpolation (slerp) stays where the prior puts
# its mass. With a well-trained VAE both look smooth: the latent space has no holes between faces.

# %%
with torch.no_grad():
    za, zb = model.encode(x[[0, 5]].to(device)).cpu()
    ts = torch.linspace(0, 1, 8)
    rows = torch.stack([lerp(za, zb, float(t)) for t in ts] + [slerp(za, zb, float(t)) for t in ts])
    show(
        model.decode(rows.to(device)).cpu(),
        nrow=8,
        title="lerp (top) and slerp (bottom) between two faces",
    )
plt.show()

# %% [markdown]
# ## 4. Results

# %%
scores = evaluate(model, torch.from_numpy(test.images.copy()))
mse = ((recon - x) ** 2).mean().item()
print(f"{'test ELBO':28s} {scores['elbo']:10.1f} nats/image")
print(f"{'  reconstruction term':28s} {-scores['reconstruction']:10.1f}")
print(f"{'  KL term':28s} {scores['kl']:10.1f}")
print(f"{'bits/dim (5-bit)':28s} {scores['bits_per_dim']:10.3f}")
print(f"{'decoder sigma':28s} {model.log_sigma.exp().item():10.4f}")
print(f"{'reconstruction MSE':28s} {mse:10.5f}")

# %% [markdown]
# ## Exercises
# 1. Which latent dimensions does the model actually use? Compute the average KL per dimension over
#    test faces and plot it sorted. (Dimensions with KL ≈ 0 are "collapsed": the decoder ignores them.)
# 2. Decode a traversal of the most-used dimension from −3 to 3 around another test face, with
#    the dimensions ranked over 2,000 faces. What changes?
# 3. Train a tiny β-VAE (`VAEConfig(beta=4.0, width=8)`) for 100 steps and compare its KL with the
#    β = 1 demo above. Why is it smaller?
#
# <details><summary>Solution 1</summary>
#
# ```python
# with torch.no_grad():
#     mu, logvar = model.posterior(torch.from_numpy(test.images[:2000].copy()).float().div(255).to(device))
# kl_dim = (0.5 * (mu**2 + logvar.exp() - 1 - logvar)).mean(0).cpu()
# plt.bar(range(len(kl_dim)), kl_dim.sort(descending=True).values); plt.ylabel("nats"); plt.show()
# ```
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# top = kl_dim.argmax()
# direction = torch.zeros(model.config.latent); direction[top] = 1
# show(strip(model, model.encode(x[:1].to(device)), direction, torch.linspace(-3, 3, 8).tolist()), nrow=8)
# ```
# A single dimension usually mixes several factors (pose, lighting, hair): the latent space is not
# aligned with attributes, which is why notebook 03 *finds* attribute directions instead.
# </details>
#
# <details><summary>Solution 3</summary>
#
# ```python
# b4 = train_vae(root, "runs/vae_beta4", TrainConfig(epochs=1, batch_size=32, lr=2e-3, warmup_steps=5),
#                VAEConfig(width=8, beta=4.0), max_steps=100)
# print(b4["meta"]["history"][-1]["kl"])
# ```
# The KL term costs four times as much, so the encoder keeps its posteriors closer to the prior
# (less information per code): smoother, blurrier, often more disentangled.
# </details>
#
# ## Summary
# - A VAE maximises the ELBO: reconstruction log-likelihood minus the KL of the posterior to the prior.
# - The reparameterisation trick makes the sampled code differentiable; the KL is closed-form.
# - Bits/dim put the ELBO on a scale shared with flows (notebook 05); 5 means "knows nothing".
# - The latent space is smooth: reconstructions, samples and interpolations all look like faces.
#
# **Next:** `03_vae_attribute_vectors`: find the directions that add a smile.
#
# ## References
# - D. P. Kingma, M. Welling. *Auto-Encoding Variational Bayes*. ICLR 2014.
# - D. J. Rezende, S. Mohamed, D. Wierstra. *Stochastic Backpropagation and Approximate Inference in
#   Deep Generative Models*. ICML 2014.
# - O. Rybkin, K. Daniilidis, S. Levine. *Simple and Effective VAE Training with Calibrated Decoders*. ICML 2021.
# - P. Ghosh, M. S. M. Sajjadi, A. Vergari, M. Black, B. Schölkopf. *From Variational to
#   Deterministic Autoencoders*. ICLR 2020 (ex-post density estimation).
# - I. Higgins et al. *β-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework*. ICLR 2017.
