# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Glow: exact encoding, bits per dimension and attribute editing
#
# A VAE *approximates* the code of a face (the encoder's guess) and the likelihood of the face (a
# lower bound). A normalizing flow does neither: it is an invertible network, so every face has
# exactly one code, decoding that code gives the face back to float precision, and the
# likelihood is computed exactly by the change-of-variables formula. Glow (Kingma & Dhariwal,
# 2018) is the flow that made this work for faces, and showed that attribute vectors (notebook
# 03's mean differences) edit faces in its latent space too.
#
# **You will**
# 1. derive the change-of-variables formula in three lines and check it numerically;
# 2. take apart a Glow step (ActNorm, invertible 1x1 convolution, affine coupling) and check each
#    layer's log-determinant against autograd;
# 3. watch a short training run, then load the shipped model and read its bits/dim beside the
#    VAE's;
# 4. sample at several temperatures and reconstruct real faces *exactly*;
# 5. compute attribute directions, edit faces, score the edits with the attribute predictor, and
#    interpolate between faces;
# 6. edit live with sliders.
#
# **Prerequisites:** notebooks 02 and 03. **Time to run:** about two minutes on a 2-core CPU.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import fel
from fel.checkpoints import resolve_checkpoint
from fel.classifier import load_pretrained as load_classifier
from fel.codes import encode_all
from fel.data import CelebA, default_root
from fel.directions import lerp, mean_difference, orthogonalize, projection_auc, unit
from fel.flow import Glow, GlowConfig, evaluate, load_pretrained, train_glow
from fel.flow.model import ActNorm, AffineCoupling, InvConv2dLU
from fel.flow.recipe import TRAINING
from fel.identity import load_pretrained as load_identity
from fel.metrics import edit_report
from fel.training import TrainConfig
from fel.viz import show
from fel.widgets import LatentEditor, strip

RETRAIN = False  # True: train the full recipe (about an hour on a 2-core CPU) instead of loading
device = fel.device()
root = default_root()
fel.seed_everything(0)
print("device:", device, "| data:", root)

# %% [markdown]
# ## 1. Change of variables in three lines
#
# Let $f$ be invertible and differentiable, $z = f(x)$, with a simple density $p_Z$ (a Gaussian).
# Probability mass is conserved, $p_X(x)\,dx = p_Z(z)\,dz$, so in $D$ dimensions
#
# $$\log p_X(x) = \log p_Z\big(f(x)\big) + \log\left|\det \frac{\partial f}{\partial x}\right|.$$
#
# Compose many simple invertible layers $f = f_K\circ\dots\circ f_1$ and the log-determinants
# add up. That is the whole model; the art is in layers whose inverse and determinant are cheap.
# A one-dimensional check: if $x \sim \mathcal N(3, 2^2)$ then $f(x) = (x-3)/2$ maps it to
# $\mathcal N(0,1)$ and $\log|f'| = -\log 2$.

# %%
x = torch.linspace(-3, 9, 7)
z = (x - 3) / 2
log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z)
by_formula = log_pz + math.log(1 / 2)
exact = torch.distributions.Normal(3.0, 2.0).log_prob(x)
print("change of variables:", by_formula.numpy().round(4))
print("true log density:   ", exact.numpy().round(4))

# %% [markdown]
# ## 2. One step of Glow, layer by layer
#
# Images are squeezed (each 2x2 block of pixels becomes 4 channels) and then pass through $K$
# *steps*, each three invertible layers on a tensor of shape $[C, H, W]$:
#
# | layer | forward | log-determinant |
# |---|---|---|
# | ActNorm | $y = (x + b)\odot e^{s}$ per channel, initialised from data (fel: the first 512 training images) to zero mean and unit variance | $H W \sum_c s_c$ |
# | invertible 1x1 conv | $y = W x$ at every pixel, $W = P L (U + \operatorname{diag}(\pm e^{\sigma}))$ | $H W \sum_c \sigma_c$ |
# | affine coupling | $x_a, x_b$ = halves; $(t, h) = \mathrm{NN}(x_a)$; $y_b = (x_b + t)\odot s$, $s = m + (1-m)\operatorname{sigmoid}(h + 2)$ | $\sum \log s$ |
#
# The coupling's network never has to be inverted: $x_a$ passes through unchanged, so the
# inverse can recompute $t$ and $h$ from it. Glow's scale is $\operatorname{sigmoid}(h+2)$ ($m=0$);
# fel floors it at $m = 0.5$: the inverse divides by $s$, and with $m = 0$ scales near 0 made
# edited codes decode to NaN (the README has the measurement). Let us check the three formulas against the brute-force
# answer, the log-determinant of the full Jacobian computed by autograd (in float64, on a tiny
# $[4, 3, 3]$ input, so the Jacobian is $36\times36$):

# %%
torch.manual_seed(0)
tiny = torch.randn(1, 4, 3, 3, dtype=torch.float64)
layers = {
    "ActNorm": ActNorm(4),
    "1x1 conv (LU)": InvConv2dLU(4),
    "affine coupling": AffineCoupling(4, 8),
}
print(
    f"{'layer':18s} {'returned logdet':>16s} {'autograd slogdet':>17s} {'|x - reverse(f(x))|':>20s}"
)
for name, layer in layers.items():
    layer = layer.double()
    with torch.no_grad():  # move off the initial values (zero-initialised layers are identities)
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    y, logdet = layer(tiny)
    jac = torch.autograd.functional.jacobian(
        lambda v, layer=layer: layer(v.view_as(tiny))[0].flatten(), tiny.flatten()
    )
    err = (layer.reverse(y) - tiny).abs().max().item()
    print(
        f"{name:18s} {logdet.item():16.6f} {torch.linalg.slogdet(jac)[1].item():17.6f} {err:20.1e}"
    )

# %% [markdown]
# **Multi-scale.** After each level's $K$ steps, half of the channels *leave* as latents $z_\ell$
# (their Gaussian's mean and scale are predicted from the half that stays), and the rest are
# squeezed again. Coarse levels model the layout of the face, fine levels its texture. The code of
# an image is all the $z_\ell$ concatenated: exactly as many numbers as pixel values.

# %%
shipped = GlowConfig()  # the shipped recipe's architecture: 64x64, 4 levels
print(f"latent shapes of the {shipped.size}x{shipped.size} model:", Glow(shipped).z_shapes, "->",
      3 * shipped.size**2, "numbers")  # fmt: skip

# %% [markdown]
# ## 3. Training: maximum likelihood in bits per dimension
#
# Pixels are integers, densities are continuous. Glow reduces colours to $n_\text{bits}=5$
# ($2^5=32$ levels, its CelebA-HQ setting), adds uniform noise inside each bin (*dequantisation*)
# and minimises
#
# $$\text{bits/dim} = \frac{-\big(\log p(z) + \log|\det|\big) + D \log 2^{n_\text{bits}}}{D \ln 2},$$
#
# the average number of bits a code built on the model would need per colour value. A uniform
# model needs exactly 5. A short visible run (40 steps of a small Glow), logged by the same loop
# that trains every fel model:

# %%
t0 = time.perf_counter()
demo = train_glow(root, "runs/glow_demo", TrainConfig(epochs=1, batch_size=32, lr=2e-3, warmup_steps=10, amp=False),
                  GlowConfig(size=32, levels=3, steps=2, hidden=32), max_steps=40)  # fmt: skip
steps = [h["step"] for h in demo["meta"]["history"] if "loss" in h]
losses = [h["loss"] for h in demo["meta"]["history"] if "loss" in h]
plt.figure(figsize=(5, 2.5))
plt.plot(steps, losses, "o-")
plt.axhline(5, color="gray", ls="--", label="uniform 5-bit model")
plt.xlabel("step"), plt.ylabel("bits/dim"), plt.legend(), plt.title("a 40-step demo run")
plt.show()
print(
    f"demo: test {demo['meta']['test']['bits_per_dim']:.3f} bits/dim after 40 steps ({time.perf_counter() - t0:.0f} s)"
)

# %% [markdown]
# The shipped model is the same recipe at full size, at the VAE's and the GAN's resolution: 64x64,
# 4 levels x 8 steps, 64 hidden channels (1.6 M parameters), trained with `python -m fel train
# glow`, whose defaults are this recipe (`fel.flow.recipe.TRAINING` and `GlowConfig()`). The
# command, its time and its data are in the checkpoint's metadata, printed below. Set
# `RETRAIN = True` above to train it yourself (about 1.5 hours on a 2-core CPU, minutes on a GPU).

# %%
if RETRAIN:
    result = train_glow(root, "runs/glow", TRAINING, GlowConfig())  # the shipped recipe
    model = Glow(GlowConfig(**result["config"]))
    model.load_state_dict(result["model"])
    model = model.to(device).eval()
    model.meta = result["meta"]
else:
    model = load_pretrained(device)
meta = model.meta
print("command:", meta.get("command", "train_glow(...) in this notebook"))
print(
    f"trained {meta['step']} steps in {meta['train_seconds'] / 60:.0f} min; test bits/dim {meta['test']['bits_per_dim']:.3f}"
)
curve = [(h["step"], h["loss"]) for h in meta["history"] if "loss" in h]
valid = [(h["step"], h["valid_bpd"]) for h in meta["history"] if "valid_bpd" in h]
plt.figure(figsize=(6, 2.5))
plt.plot(*zip(*curve), lw=0.8, label="train (batch means)")
plt.plot(*zip(*valid), "o-", label="valid")
plt.ylim(top=2.5), plt.xlabel("step"), plt.ylabel("bits/dim"), plt.legend()
plt.show()

# %% [markdown]
# **Glow beside the VAE.** Both numbers are bits per dimension at 5 bits per colour, and both are
# upper bounds on the true code length of the 5-bit images: scoring the density of *noisy*
# (uniformly dequantised) pixels costs at least as many bits as the images themselves (Jensen's
# inequality; Theis et al. 2016). Glow's bound stops there: its density of the noisy data is exact.
# The VAE adds a second gap, the ELBO's (its likelihood is itself only bounded). Both models see
# the same 64x64 test faces, so the two numbers compare like for like.

# %%
SIZE = model.config.size  # every image below is read at the model's own size
test = CelebA(root, split="test", size=SIZE)
test_x = torch.from_numpy(test.images[:500].copy()).float() / 255
vae_meta = torch.load(resolve_checkpoint("vae.pt"), weights_only=True)["meta"]
print(f"{'model':28s} {'resolution':>10s} {'test bits/dim':>14s}  kind")
print(f"{'uniform over 32 levels':28s} {'any':>10s} {5.0:14.3f}  exact")
print(
    f"{'VAE (notebook 02)':28s} {'64x64':>10s} {vae_meta['test']['bits_per_dim']:14.3f}  bound: dequantisation + ELBO"
)
print(
    f"{'Glow (this notebook)':28s} {f'{SIZE}x{SIZE}':>10s} {evaluate(model, test_x)['bits_per_dim']:14.3f}  bound: dequantisation only"
)

# %% [markdown]
# ## 4. Samples and temperature
#
# Sampling runs the flow backwards from Gaussian draws. Glow's *temperature* $T$ scales the
# prior's standard deviation: $T=1$ is the model's honest distribution (varied, with noisy
# textures, because the model spreads mass on everything it is unsure about); $T\approx0.7$ trades
# diversity for cleaner faces; $T=0$ gives every level's mean.

# %%
temps = [0.0, 0.5, 0.7, 0.85, 1.0]
rows = [
    model.sample(8, generator=torch.Generator().manual_seed(1), temperature=t).cpu() for t in temps
]
show(torch.cat(rows), nrow=8, width=9, title="temperature 0, 0.5, 0.7, 0.85, 1.0 (rows)")
plt.show()

# %% [markdown]
# ## 5. Exact reconstruction
#
# Encoding is the forward pass and decoding its inverse: no encoder network to train, no
# approximate posterior, no optimisation (the GAN of notebook 04 needs all three). The round trip
# is exact up to float32 rounding:

# %%
with torch.no_grad():
    codes = model.encode(test_x[:16].to(device))
    back = model.decode(codes).cpu()
print(
    f"codes {tuple(codes.shape)}; max |x - decode(encode(x))| = {(back - test_x[:16]).abs().max():.2e}"
)
show(
    torch.cat([test_x[:8], back[:8]]),
    nrow=8,
    width=8,
    title="test faces (top) and their decoded codes (bottom)",
)
plt.show()

# %% [markdown]
# ## 6. Attribute directions
#
# Exactly notebook 03's recipe, now on exact codes: the direction for an attribute is the mean
# code of faces that have it minus the mean code of those that do not,
# $d_a = \bar z_{P} - \bar z_{N}$, and an edit is $z + \alpha\, d_a$. With $\alpha$ in units of
# $\lVert d_a\rVert$, $\alpha = 1$ moves a face by the whole distance between the two group means.
# We encode 2,000 training faces (labels from the dataset) and check each direction on held-out
# test codes.

# %%
train = CelebA(root, split="train", size=SIZE)
z_train = encode_all(model, train.images[:2000], progress=True)
z_test = encode_all(model, test.images[:500])
ATTRS = ["Smiling", "Mouth_Slightly_Open", "Narrow_Eyes", "Male", "Eyeglasses", "Bangs"]
col = {a: train.attr_names.index(a) for a in ATTRS}
directions = {a: mean_difference(z_train, train.labels[:2000, col[a]]) for a in ATTRS}
print(f"{'attribute':22s} {'|d|':>6s} {'held-out AUC':>13s}")
for a, d in directions.items():  # nan: the test faces hold one class only (a small data set)
    print(f"{a:22s} {d.norm():6.1f} {projection_auc(d, z_test, test.labels[:500, col[a]]):13.3f}")

# %% [markdown]
# Edit strips: each row moves one test face along one direction, $\alpha = -1 \dots +1.5$ (the
# middle-left column, $\alpha=0$, is the face itself, exactly).

# %%
alphas = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
face = 5
rows = [
    strip(model, z_test[face], d, [a * d.norm().item() for a in alphas])
    for d in directions.values()
]
show(torch.cat(rows), nrow=len(alphas), width=7, title="rows: " + ", ".join(ATTRS))
plt.show()

# %% [markdown]
# ## 7. Scoring the edits
#
# The attribute predictor (notebook 01) measures each edit over 256 test faces: how much the
# target attribute's probability rises, how much the *other* attributes move (leakage), and how
# much the pixels outside the edited region change (preservation: lower is better).

# %%
idx = torch.arange(min(256, len(z_test)))
strength = 1.0
report = {}
clf = load_classifier(device)
with torch.no_grad():
    before = test_x[idx]  # exact: decode(encode(x)) == x
    for a in ["Smiling", "Narrow_Eyes", "Mouth_Slightly_Open", "Eyeglasses", "Bangs"]:
        d = directions[a]
        after = model.decode((z_test[idx] + strength * d).to(device)).cpu()
        report[a] = edit_report(clf, before, after, a)
print(f"{'edit (alpha = 1)':22s} {'target +p':>10s} {'leakage':>8s} {'outside px':>11s}")
for a, r in report.items():
    print(f"{a:22s} {r['target_change']:10.3f} {r['leakage']:8.3f} {r['preservation']:11.4f}")

# %% [markdown]
# As with the VAE, the smile vector drags the open mouth along (in the data, smiling faces show
# their teeth). In notebook 03 the VAE's two vectors were nearly parallel (cosine 0.99), so
# removing the mouth direction removed the smile too. In Glow's exact, 12,288-number code they are
# less aligned (the cosine printed below): orthogonalising keeps about 60% of the smile's effect
# and stops the mouth from opening (it even closes a little).

# %%
smile_only = orthogonalize(directions["Smiling"], [directions["Mouth_Slightly_Open"]])
smile_only = smile_only * directions["Smiling"].norm() / smile_only.norm()
cos = float(unit(directions["Smiling"]) @ unit(directions["Mouth_Slightly_Open"]))
print(f"cosine(smile, mouth open) = {cos:.2f}")
with torch.no_grad():
    for name, d in {
        "raw smile": directions["Smiling"],
        "smile orthogonal to mouth": smile_only,
    }.items():
        after = model.decode((z_test[idx] + strength * d).to(device)).cpu()
        r = edit_report(clf, before, after, "Smiling")
        print(
            f"{name:26s} P(smiling) {r['target_change']:+.3f}   P(mouth open) {r['changes']['Mouth_Slightly_Open']:+.3f}"
        )

# %% [markdown]
# ## 8. Interpolation
#
# Straight lines between two exact codes: both ends are the real faces, and every point between
# decodes to a face-like image.

# %%
a_code, b_code = z_test[3], z_test[11]
path = torch.stack([lerp(a_code, b_code, t) for t in np.linspace(0, 1, 8)])
with torch.no_grad():
    show(model.decode(path.to(device)).cpu(), nrow=8, width=9, title="interpolating two test faces")
plt.show()

# %% [markdown]
# ## 9. Live sliders
#
# The same `LatentEditor` as for the VAE: any model with `encode`/`decode` works. As in notebooks
# 03 and 04, slider units are σ, the spread of the training codes along each direction, and each
# range ends where the edit stops being clean, measured on fresh test faces without the
# attribute. The smile slider offers the raw vector (the default) and the one orthogonal to
# mouth-open as a choice.
#
# Glow shows why "clean" must look *inside* the face too. Past about 2.5σ its smile and mouth
# edits break into dots of saturated red and white around the teeth (the end columns of the
# README's Glow strip), first on faces that already smile a little: the code has left the region
# the flow was trained on, and its inverse amplifies that. Hair and background do not move, so
# the outside-pixel measure alone calls these edits clean to 4σ and beyond. The sweep also counts
# the dots an edit adds inside the face (`fel.metrics.speckles`: pixels that stand out from their
# 3×3 neighbourhood's median, which the edges of teeth and lips do not) and ends the clean range
# where they pass 1% of the inner face; the printout gives each sweep's dots at its +0.5 step.
# The editor starts on a test face that shows none of the edited attributes. A Glow decode is a
# full reverse pass through 32 steps (the timing printed below): slower than the VAE's decoder,
# still interactive on a CPU. The status line says whether the edit still shows the same person
# (notebook 03, section 5).

# %%
from fel.comparison import lacking, sweep_edit
from fel.directions import spread

EDITS = ["Smiling", "Mouth_Slightly_Open", "Narrow_Eyes", "Eyeglasses"]
ranges = {}
for a in EDITS:
    fresh = z_test[lacking(clf, test_x, a, at_least=16)[:16]]
    sweep = sweep_edit(model, clf, fresh, directions[a], a, spread(z_train, directions[a]),
                       steps=[1, 1.5, 2, 2.5, 3, 3.5, 4])  # fmt: skip
    print(sweep)
    end = min(max(sweep.clean_until, 1.0), 4.0)
    ranges[a] = (-end, end)
edit_dirs = {"Smiling": {"raw": directions["Smiling"], "orthogonal to mouth": smile_only},
             **{a: directions[a] for a in EDITS[1:]}}  # fmt: skip
start = int(lacking(clf, test_x[:100], EDITS)[0])
editor = LatentEditor(model, z_test[start], edit_dirs, ranges=ranges, codes=z_train,
                      faces=test_x[:100], scale=5, identity=load_identity(device, required=False))  # fmt: skip
editor

# %%
before_png = editor.image.value
editor.set(Smiling=ranges["Smiling"][1])
print(
    "picture changed:",
    editor.image.value != before_png,
    f"| decode time: {1000 * editor.decode_seconds:.0f} ms",
)
editor.reset()

# %% [markdown]
# ## Exercises
# 1. Temperature also matters for *edits*: encode a face, scale its code by 0.7 before and after
#    adding the smile vector, and compare. Why does shrinking a real face's code change it?
# 2. Which levels carry the smile? Split $d_\text{Smiling}$ into its per-level parts
#    (`model.unflatten`) and edit with one level's part at a time.
# 3. Compute the Smiling direction with labels from the attribute *predictor* instead of the
#    dataset (as you would for unlabelled photos). How close is it (cosine) to the labelled one?
#
# <details><summary>Solution 1</summary>
#
# ```python
# z = z_test[face:face + 1]
# with torch.no_grad():
#     show(model.decode(torch.cat([z, 0.7 * z, z + directions["Smiling"], 0.7 * (z + directions["Smiling"])]).to(device)).cpu(), nrow=4)
# ```
# Temperature is a property of *sampling*: it scales each level's deviation from its
# *conditional* prior mean, computed level by level. Multiplying a real face's whole code by 0.7 is
# a different operation: it pulls every level towards zero, which for the split levels is not where
# their prior puts the face, so the decoded face changes in ways unrelated to any attribute. Edits
# of real faces should leave the code's scale alone.
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# parts = model.unflatten(directions["Smiling"][None])
# for level in range(len(parts)):
#     only = [p if i == level else torch.zeros_like(p) for i, p in enumerate(parts)]
#     d = model.flatten(only)[0]
#     show(strip(model, z_test[face], d, [0, d.norm().item()]), nrow=2, title=f"level {level}")
# ```
# Levels are numbered from the finest: 0 (16x16), 1 (8x8), 2 (4x4, the top). Scored with
# `edit_report` on 256 test faces (measured with this code, outside the notebook), the top level's
# part alone raises P(smiling) by about 0.30, level 1's by 0.06 and level 0's by 0.02: the smile is
# a coarse change; the fine levels hold texture.
# </details>
#
# <details><summary>Solution 3</summary>
#
# ```python
# with torch.no_grad():
#     p = clf.predict(torch.from_numpy(train.images[:6000].copy()).float().div(255).to(device)).cpu()
# d_pred = mean_difference(z_train, (p[:, clf.attribute_index("Smiling")] > 0.5).float())
# print(float(unit(d_pred) @ unit(directions["Smiling"])))
# ```
# The predictor is 98.5% accurate on Smiling, so the two directions nearly coincide.
# </details>
#
# ## Summary
# - A flow is an invertible network; its log-likelihood is $\log p(z) + \log|\det J|$, exact.
# - Glow's step (ActNorm, 1x1 convolution, affine coupling) has a cheap inverse and a cheap
#   log-determinant; the multi-scale split hands coarse structure to deep levels.
# - Bits/dim measures density models on one scale; both numbers are bounds for 5-bit images, but
#   only the VAE's adds the ELBO's gap on top of dequantisation.
# - Encoding is exact, so real faces are edited without inversion; mean-difference directions
#   work as in the VAE, and orthogonalisation removes label-driven entanglement.
#
# **Next:** `06_comparison`: the three families side by side on the same faces.
#
# ## References
# - D. P. Kingma, P. Dhariwal. *Glow: Generative Flow with Invertible 1x1 Convolutions*. NeurIPS 2018.
# - L. Theis, A. van den Oord, M. Bethge. *A note on the evaluation of generative models*. ICLR 2016.
# - L. Dinh, J. Sohl-Dickstein, S. Bengio. *Density estimation using Real NVP*. ICLR 2017.
# - G. Papamakarios et al. *Normalizing Flows for Probabilistic Modeling and Inference*. JMLR 2021.
