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
# # 01 · Exploring CelebA (and SynthFaces): attributes, correlations, identities
#
# Every editing method in this course learns its directions from **labelled faces**. What the
# labels say, how often, and how they go together decides what a learned "smile" direction really
# encodes. This notebook looks hard at the data before any model sees it.
#
# **You will**
# 1. read CelebA's files and the 148-pixel crop every model uses;
# 2. measure how often each attribute occurs, and which attributes travel together;
# 3. see why correlated labels *entangle* editing directions, and what label noise does;
# 4. look at identities (the same person, other expressions) and landmarks;
# 5. learn how SynthFaces is made and where it differs from real CelebA;
# 6. meet the yardstick: the attribute predictor that scores every edit in the course.
#
# **Prerequisites:** notebook 00. **Time to run:** about a minute on a 2-core CPU.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from fel.data import (
    ATTRIBUTES,
    CelebA,
    default_root,
    find_layout,
    is_synthfaces,
    read_identities,
    read_landmarks,
)
from fel.data.synthfaces import (
    DRAWN,
    FACTORS,
    NOT_DRAWN,
    counterfactual,
    labels_from_factors,
    noisy_labels,
    read_factors,
    render_aligned,
)
from fel.viz import show

root = default_root()
synthetic = is_synthfaces(root)  # SynthFaces has the factors behind each image; photos do not
print("dataset:", root, "(SynthFaces)" if synthetic else "(real CelebA)")

# %% [markdown]
# ## 1. The files
#
# CelebA's attribute file starts with the number of images, then the 40 attribute names, then one
# row per image with `1` (present) or `-1` (absent). Spacing is irregular (positive values get two
# spaces), which trips naive parsers; `fel.data.CelebA` reads it strictly and names the line of any
# malformed row.

# %%
layout = find_layout(root)  # which of CelebA's layouts (official, torchvision, Kaggle, zip) this is
print("attributes:", layout.attr_file.name, "  images:", layout.images.relative_to(layout.base))
with open(layout.attr_file) as fh:
    for _, line in zip(range(4), fh):
        print(line.rstrip()[:110] + (" ..." if len(line) > 110 else ""))

# %%
faces = CelebA(root, split="all", size=64)
labels = faces.labels.numpy()
print(faces)
for split in ("train", "valid", "test"):  # cache=False: count the split's files, decode nothing
    print(f"{split:6s} {len(CelebA(root, split=split, size=64, cache=False)):6d} images")

# %% [markdown]
# ## 2. How often each attribute occurs
#
# Attributes are far from balanced: most faces are `Young` and have `No_Beard`, few are `Bald`.
# Rare attributes give few positive examples to learn a direction from, and a classifier can score
# 98% accuracy on `Bald` by always answering "no", which is why the course reports ROC AUC.

# %%
freq = labels.mean(0)
order = np.argsort(freq)
fig, ax = plt.subplots(figsize=(10, 7))
colours = ["#888" if synthetic and ATTRIBUTES[i] in NOT_DRAWN else "#3a7" for i in order]
ax.barh([ATTRIBUTES[i] for i in order], freq[order] * 100, color=colours)
ax.set_xlabel("% of images with the attribute")
ax.set_title(
    "Attribute frequencies" + (" (grey: not drawn by SynthFaces, always -1)" if synthetic else "")
)
plt.tight_layout()
plt.show()

# %% [markdown]
# For the attributes the course edits most, SynthFaces was tuned to CelebA's published
# frequencies (Liu et al. 2015; rounded). On your own CelebA copy the two columns should agree:

# %%
celeba_percent = {"Smiling": 48, "Mouth_Slightly_Open": 48, "Male": 42, "Young": 77, "No_Beard": 83,
                  "Wearing_Lipstick": 47, "Bangs": 15, "Narrow_Eyes": 12, "Eyeglasses": 6.5,
                  "Gray_Hair": 4, "Bald": 2}  # fmt: skip
print(f"{'attribute':22s} {'here %':>7s} {'CelebA %':>9s}")
for name, p in celeba_percent.items():
    print(f"{name:22s} {100 * freq[ATTRIBUTES.index(name)]:7.1f} {p:9.1f}")

# %% [markdown]
# ## 3. What the labels look like
#
# Six faces with and six without each attribute. Look at what else differs between the two rows:
# whatever differs *systematically* will leak into a direction learned from these labels.

# %%
rng = np.random.default_rng(0)
for name in ["Smiling", "Mouth_Slightly_Open", "Narrow_Eyes", "Eyeglasses"]:
    j = ATTRIBUTES.index(name)
    with_it, without = np.flatnonzero(labels[:, j] == 1), np.flatnonzero(labels[:, j] == 0)
    k = min(6, len(with_it), len(without))  # a small copy may have fewer than six
    pos, neg = rng.choice(with_it, k, replace=False), rng.choice(without, k, replace=False)
    batch = torch.stack([faces[int(i)][0] for i in np.concatenate([pos, neg])])
    show(batch, nrow=k, width=7, title=f"top: {name}    bottom: not {name}")
    plt.show()

# %% [markdown]
# ## 4. Attributes travel together
#
# The correlation (phi coefficient) between two binary labels $a, b$ is the Pearson correlation of
# the 0/1 columns:
#
# $$\phi_{ab} = \frac{\mathrm{cov}(a, b)}{\sigma_a \sigma_b}.$$

# %%
shown = DRAWN if synthetic else [a for a, p in zip(ATTRIBUTES, freq) if 0 < p < 1]  # not constant
drawn = [ATTRIBUTES.index(a) for a in shown]
phi = np.corrcoef(labels[:, drawn].T)
fig, ax = plt.subplots(figsize=(9, 8))
im = ax.imshow(phi, cmap="RdBu_r", vmin=-1, vmax=1)
ax.set_xticks(range(len(drawn)), shown, rotation=90, fontsize=7)
ax.set_yticks(range(len(drawn)), shown, fontsize=7)
fig.colorbar(im, shrink=0.7, label="phi")
ax.set_title("Correlation between attribute labels")
plt.tight_layout()
plt.show()

pairs = [
    (phi[i, k], shown[i], shown[k]) for i in range(len(drawn)) for k in range(i + 1, len(drawn))
]
for value, a, b in sorted(pairs, key=lambda t: -abs(t[0]))[:8]:
    print(f"{a:20s} {b:20s} {value:+.2f}")

# %% [markdown]
# **Why this matters for editing.** The simplest attribute direction is a difference of means,
# $d = \bar z_{\text{smiling}} - \bar z_{\text{not smiling}}$. Smiling faces here also have their
# mouth open more often, so $d$ also opens the mouth. We can see that in the labels alone:

# %%
smile, mouth = (
    labels[:, ATTRIBUTES.index("Smiling")],
    labels[:, ATTRIBUTES.index("Mouth_Slightly_Open")],
)
male = labels[:, ATTRIBUTES.index("Male")]
print(f"P(mouth open | smiling)     = {mouth[smile == 1].mean():.2f}")
print(f"P(mouth open | not smiling) = {mouth[smile == 0].mean():.2f}")
print(
    f"P(male | smiling) = {male[smile == 1].mean():.2f}   P(male | not smiling) = {male[smile == 0].mean():.2f}"
)

# %% [markdown]
# Two cures come later: **balancing** (compute the means over sets matched on the confounding
# attribute, notebook 03) and **conditional projection** (remove the component along the other
# attribute's direction, notebook 04).
#
# ## 5. The same person, other expressions
#
# CelebA has about 20 images per identity (`identity_CelebA.txt`). These galleries are the
# material for "same person, other expression", and they are why splits are made *by identity*:
# test faces belong to people no model saw in training.

# %%
try:
    identity_of = read_identities(root)  # file name -> person number
except FileNotFoundError as missing:  # Kaggle's copy has no identity file
    identity_of = None
    print(
        "skipped: " + str(missing).split(". ")[0] + " (the rest of the notebook does not need it)"
    )
if identity_of:
    counts = np.unique(list(identity_of.values()), return_counts=True)[1]
    print(f"{len(counts)} identities; images per identity: median {np.median(counts):.0f}, "
          f"max {counts.max()}")  # fmt: skip
    person = identity_of[faces.filenames[min(10, len(faces) - 1)]]
    gallery = [i for i, f in enumerate(faces.filenames) if identity_of[f] == person][:8]
    show(torch.stack([faces[i][0] for i in gallery]), nrow=8, width=10,
         title=f"identity {person}: one person, {len(gallery)} photos")  # fmt: skip
    plt.show()

# %% [markdown]
# ## 6. Alignment, landmarks and the 148 crop
#
# The aligned images put the eyes at nearly the same pixels in every image (the five landmarks
# below). Most CelebA work then cuts the central 148×148 square (x 15–163, y 35–183) and resizes
# it: the face fills the frame and the background mostly goes.

# %%
try:
    marks = read_landmarks(root)  # file name -> [5, 2] pixel positions
except FileNotFoundError as missing:
    marks = {}
    print("no landmarks drawn: " + str(missing).split(". ")[0])
fig, axes = plt.subplots(1, 4, figsize=(10, 3.6))
for k, ax in enumerate(axes):
    ax.imshow(faces.aligned(k))  # the whole aligned image, before the crop
    if faces.filenames[k] in marks:
        ax.scatter(*marks[faces.filenames[k]].T, c="yellow", s=12)
    ax.add_patch(Rectangle((15, 35), 148, 148, fill=False, ec="cyan", lw=1.5))
    ax.axis("off")
fig.suptitle("178×218 aligned images" + (", 5 landmarks" if marks else "")
             + " and the 148×148 crop (cyan)")  # fmt: skip
plt.tight_layout()
plt.show()

# %%
sizes = [128, 64, 32]
fig, axes = plt.subplots(1, len(sizes), figsize=(8, 3))
for ax, s in zip(axes, sizes):
    ax.imshow(CelebA(root, split="valid", size=s, cache=False)[0][0].permute(1, 2, 0))  # 1 decode
    ax.set_title(f"{s}×{s}")
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 7. The cache
#
# The first time a split is read at a size, fel decodes its JPEGs in parallel (at reduced JPEG
# scale when the output is small) into a uint8 file; afterwards the dataset memory-maps it.

# %%
t = time.perf_counter()
again = CelebA(root, split="all", size=64)
print(f"reopen: {time.perf_counter() - t:.2f} s for {len(again)} images; array {again.images.shape}, "
      f"{again.images.nbytes / 2**20:.0f} MiB")  # fmt: skip

# %% [markdown]
# ## 8. How SynthFaces is made
#
# Each image is drawn from ~50 continuous **factors** (`list_factors_synthfaces.txt`): identity
# traits (skin, face shape, hair, nose, lips, brows), expression (smile, mouth opening, eye
# opening, brow raise), pose, light and accessories. A label is a threshold of its factors, e.g.
# `Smiling = smile > 0.5`, then 1% of labels are flipped to imitate annotation noise. Because the
# image is a function of the factors, we can re-render any face with one factor changed.

# %%
if not synthetic:
    print("skipped: real CelebA has no factors (this section and the noise one are SynthFaces')")
else:
    fnames, factors = read_factors(root)
    face = factors[fnames.index(faces.filenames[3])]
    for name in ["smile", "mouth_open", "eye_open", "male", "age", "yaw"]:
        print(f"{name:11s} {face[name]:6.3f}   {FACTORS[name]}")
    rows = []
    for name in ["smile", "mouth_open", "eye_open", "brow_raise"]:
        rows += [
            render_aligned(counterfactual(face, **{name: v}), 64) for v in np.linspace(0, 1, 6)
        ]
    show(
        np.stack(rows),
        nrow=6,
        width=9,
        title="one face; rows: smile, mouth_open, eye_open, brow_raise from 0 to 1",
    )
    plt.show()

# %% [markdown]
# **Label noise.** The labels as written are the rule applied to the factors, with flips. The
# more flips, the more the positive and negative groups blur into each other, and the weaker a
# mean-difference direction becomes. Here is the gap in the true `smile` factor between the faces
# *labelled* smiling and the others, as the noise grows:

# %%
if synthetic:
    rule = labels_from_factors(factors)
    j = ATTRIBUTES.index("Smiling")
    written = np.loadtxt(root / "list_attr_celeba.txt", skiprows=2, usecols=[1 + j], dtype=int)
    print(
        f"labels as written disagree with the rule on {100 * (written != rule[:, j]).mean():.1f}% of images"
    )
    for rate in [0.0, 0.01, 0.1, 0.2, 0.3]:
        noisy = noisy_labels(rule, rate, seed=0)[:, j] > 0
        gap = factors["smile"][noisy].mean() - factors["smile"][~noisy].mean()
        print(f"noise {rate:4.0%}: smile factor gap between the label groups {gap:.3f}")

# %% [markdown]
# **Where SynthFaces differs from CelebA.** The faces are drawn, not photographed: flat textures,
# simple hair, no real lighting or occlusion. Only 31 of the 40 attributes are drawn (the rest,
# such as `Attractive`, are -1 everywhere rather than invented). Its labels are far cleaner than
# CelebA's (1% flips versus many ambiguous CelebA labels). In exchange it offers what no photo
# set has: the true factors behind each image and exact counterfactuals, so an edit can be scored
# against the truth. Everything in the course runs on real CelebA by setting `FEL_CELEBA_ROOT`.
#
# ## 9. The yardstick: an attribute predictor
#
# To score an edit we need to know whether the edited face *looks* more smiling. fel ships a small
# CNN trained on SynthFaces (`python -m fel train classifier`) that predicts all 40 attributes and
# the continuous factors. Its test-split quality:

# %%
from fel.classifier import load_pretrained  # noqa: E402
from fel.metrics import edit_report  # noqa: E402

clf = load_pretrained()
test_report = clf.meta["test"]
print(
    f"test split: mean ROC AUC {test_report['mean_auc']:.4f}, mean accuracy {test_report['mean_accuracy']:.4f}"
)
rows = sorted(test_report["attributes"].items(), key=lambda kv: kv[1]["auc"])
fig, ax = plt.subplots(figsize=(9, 6))
ax.barh([k for k, _ in rows], [v["auc"] for _, v in rows], color="#37a")
ax.set_xlim(min(0.9, rows[0][1]["auc"] - 0.01), 1.0)
ax.set_xlabel("ROC AUC on the test split")
ax.set_title("Attribute predictor, per attribute")
plt.tight_layout()
plt.show()

# %% [markdown]
# What does a *perfect* smile edit score? Render 32 test faces twice, with `smile` 0.1 and 0.9
# and nothing else changed, and measure: the target probability should jump, the others should not
# move, and pixels outside the mouth region should stay put.

# %%
if not synthetic:
    print("skipped: a perfect edit needs SynthFaces' counterfactuals, which photos do not have")
else:
    test = CelebA(root, split="test", size=64)
    picked = [factors[fnames.index(f)] for f in test.filenames[:32]]
    to_tensor = lambda imgs: torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    before = to_tensor([render_aligned(counterfactual(f, smile=0.1), 64) for f in picked])
    after = to_tensor([render_aligned(counterfactual(f, smile=0.9), 64) for f in picked])
    report = edit_report(clf, before, after, "Smiling")
    print({k: round(v, 3) for k, v in report.items() if k != "changes"})
    biggest = sorted(report["changes"].items(), key=lambda kv: -abs(kv[1]))[:4]
    print("largest probability changes:", {k: round(v, 3) for k, v in biggest})

# %% [markdown]
# A true smile also raises the predicted `Mouth_Slightly_Open` a little: in this world a smile
# shows teeth. Keep these numbers in mind; they are the best any learned editor can hope for.
#
# ## Exercises
# 1. Which attribute is most strongly *anti*-correlated with `Male`? Is that a fact about faces or
#    about the labels?
# 2. Compute the frequency of `Smiling` among `Male` and among female faces. Would a smile direction
#    learned from all faces change the apparent gender?
# 3. Re-run the label-noise cell for `Narrow_Eyes` (factor `eye_open`, positive when *low*).
#
# <details><summary>Solution 1</summary>
#
# ```python
# m = DRAWN.index("Male")
# k = np.argmin(phi[m])
# print(DRAWN[k], phi[m, k])
# ```
# `Wearing_Lipstick` (or `Heavy_Makeup`): a fact about how people present themselves (and so about
# the photos), not about faces as such; a direction learned for one will carry the other.
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# print(smile[male == 1].mean(), smile[male == 0].mean())
# ```
# Here the two are close, so a smile direction carries little gender. In real CelebA women smile
# more often in the labels, and plain smile vectors visibly feminise faces.
# </details>
#
# <details><summary>Solution 3</summary>
#
# ```python
# j = ATTRIBUTES.index("Narrow_Eyes")
# for rate in [0.0, 0.1, 0.3]:
#     noisy = noisy_labels(rule, rate, seed=0)[:, j] > 0
#     print(rate, factors["eye_open"][noisy].mean() - factors["eye_open"][~noisy].mean())
# ```
# The gap is negative (narrow eyes have low `eye_open`) and shrinks towards 0 with noise.
# </details>
#
# ## Summary
# - CelebA's labels are binary, unbalanced and correlated; AUC, not accuracy, measures a
#   predictor of rare attributes.
# - Correlated labels entangle directions (smile with mouth opening); balancing and conditional
#   projection come later.
# - Splits are by identity; the 148 crop frames the face; fel caches decoded images.
# - SynthFaces trades realism for ground truth: factors and exact counterfactuals.
# - The attribute predictor is the yardstick for every edit in the course.
#
# **Next:** `02_vae_training`, a first generative model and its latent space.
#
# ## References
# - Z. Liu, P. Luo, X. Wang, X. Tang. *Deep Learning Face Attributes in the Wild*. ICCV 2015.
# - Y. Shen et al. *InterFaceGAN*. TPAMI 2020 (on attribute correlation and conditional editing).
