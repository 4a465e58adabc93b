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
# # 03 · Attribute vectors: adding a smile with arithmetic
#
# If the VAE's latent space is smooth, "smiling" should be a *direction* in it: the codes of
# smiling faces sit, on average, a fixed step away from those of non-smiling faces. Find that
# step, add a multiple of it to any face's code, decode, and the face smiles more.
#
# **You will**
# 1. compute attribute vectors as differences of mean latent codes, and test them (ROC AUC);
# 2. edit faces along them and measure the edits with the attribute predictor;
# 3. see confounding (smile also opens the mouth) and fix it two ways: balancing and
#    orthogonalisation;
# 4. score edits against SynthFaces' true counterfactuals;
# 5. drive it all with live sliders (`fel.widgets.LatentEditor`).
#
# **Prerequisites:** notebook 02. **Time to run:** about two minutes on a 2-core CPU.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import fel
from fel.classifier import load_pretrained as load_classifier
from fel.codes import encode_all
from fel.data import CelebA, default_root, is_synthfaces
from fel.data.synthfaces import read_factors
from fel.directions import (
    balanced_mean_difference,
    mean_difference,
    orthogonalize,
    projection_auc,
    unit,
)
from fel.identity import load_pretrained as load_identity
from fel.metrics import counterfactual_error, edit_report
from fel.vae import load_pretrained
from fel.viz import show
from fel.widgets import LatentEditor, strip

device = fel.device()
root = default_root()
model = load_pretrained(device)
clf = load_classifier(device)
size = model.config.size  # the faces the model was trained on (64 px shipped; 128 if you chose)
train, test = CelebA(root, split="train", size=size), CelebA(root, split="test", size=size)
z_train, z_test = encode_all(model, train.images), encode_all(model, test.images)  # posterior means
print("codes:", tuple(z_train.shape), tuple(z_test.shape))

# %% [markdown]
# ## 1. Attribute vectors
#
# With labels $y_i\in\{0,1\}$ for attribute $a$ and codes $z_i$:
#
# $$d_a = \frac{1}{|P|}\sum_{i\in P} z_i - \frac{1}{|N|}\sum_{i\in N} z_i,\qquad
#   z' = z + \alpha\,\frac{d_a}{\lVert d_a\rVert}.$$
#
# A good direction should *separate* the attribute on faces it was not computed from: projecting
# held-out codes on $\hat d_a$ and using that number as a classifier score, the ROC AUC should be
# close to 1.

# %%
ATTRS = ["Smiling", "Mouth_Slightly_Open", "Narrow_Eyes", "Male", "Eyeglasses", "Bangs"]
col = {a: train.attr_names.index(a) for a in ATTRS}
directions = {a: mean_difference(z_train, train.labels[:, col[a]]) for a in ATTRS}
print(f"{'attribute':22s} {'|d|':>6s} {'held-out AUC':>13s}")
for a, d in directions.items():  # nan: the test split has only one class (a small data set)
    print(f"{a:22s} {d.norm():6.2f} {projection_auc(d, z_test, test.labels[:, col[a]]):13.3f}")

# %% [markdown]
# ## 2. Editing along a direction
#
# Each row: one test face, moved along the smile direction from $\alpha=-3$ to $+3$ (latent-space
# distance; the middle column is the unedited reconstruction).

# %%
alphas = [-3, -2, -1, 0, 1, 2, 3]
faces_idx = [i for i in (0, 7, 21, 42) if i < len(z_test)]
rows = torch.cat([strip(model, z_test[i], directions["Smiling"], alphas) for i in faces_idx])
show(rows, nrow=len(alphas), width=9, title="Smiling direction, alpha = -3 ... +3")
plt.show()

# %% [markdown]
# How much more smiling does the predictor find, and what else moves? Average over 256 test faces,
# at the notebook's default strength α = 2.5:

# %%
sample = torch.arange(min(256, len(z_test)))
results = {}
with torch.no_grad():
    before = model.decode(z_test[sample].to(device)).cpu()
    for a in ["Smiling", "Narrow_Eyes", "Mouth_Slightly_Open"]:
        after = model.decode((z_test[sample] + 2.5 * unit(directions[a])).to(device)).cpu()
        results[a] = edit_report(clf, before, after, a)
print(f"{'edit (+2.5)':22s} {'target +p':>10s} {'leakage':>8s} {'outside px':>11s}")
for a, r in results.items():
    print(f"{a:22s} {r['target_change']:10.3f} {r['leakage']:8.3f} {r['preservation']:11.4f}")

# %% [markdown]
# ## 3. Confounding, and two cures
#
# In the labels, smiling faces have their mouths open far more often (notebook 01). The smile
# vector inherits that: moving along it opens the mouth too. Look at the largest side effects of
# the smile edit:

# %%
side = sorted(results["Smiling"]["changes"].items(), key=lambda kv: -abs(kv[1]))[:5]
print({k: round(v, 3) for k, v in side})
print(
    f"cosine(smile, mouth open) = {float(unit(directions['Smiling']) @ unit(directions['Mouth_Slightly_Open'])):.2f}"
)

# %% [markdown]
# **Cure 1: orthogonalisation.** Remove from the smile vector its component along the mouth-open
# vector: $d' = d - (d\cdot\hat m)\,\hat m$. Moving along $d'$ leaves the projection on $\hat m$ (the
# "mouth-open score" whose AUC we measured) unchanged.
#
# **Cure 2: balancing.** Compute the smile difference separately among faces with the mouth open
# and with it closed, and average: the mouth no longer differs between the groups compared.

# %%
mouth = train.labels[:, col["Mouth_Slightly_Open"]]
smile = train.labels[:, col["Smiling"]]
variants = {
    "raw": directions["Smiling"],
    "orthogonal to mouth": orthogonalize(
        directions["Smiling"], [directions["Mouth_Slightly_Open"]]
    ),
    "balanced over mouth": balanced_mean_difference(z_train, smile, mouth),
}
with torch.no_grad():
    print(f"{'smile vector':22s} {'P(smiling) +':>12s} {'P(mouth open) +':>15s}")
    for name, d in variants.items():
        after = model.decode((z_test[sample] + 2.5 * unit(d)).to(device)).cpu()
        r = edit_report(clf, before, after, "Smiling")
        print(f"{name:22s} {r['target_change']:12.3f} {r['changes']['Mouth_Slightly_Open']:15.3f}")
rows = torch.cat([strip(model, z_test[7], d, [0, 1.5, 3.0]) for d in variants.values()])
show(rows, nrow=3, width=5, title="raw / orthogonal / balanced smile, alpha 0, 1.5, 3")
plt.show()
print(
    f"cosine(raw, balanced) = {float(unit(variants['raw']) @ unit(variants['balanced over mouth'])):.2f}"
)

# %% [markdown]
# The same two questions for a confounder *outside* the mouth: `Male`. Compare the raw smile vector
# with one balanced over `Male`: how much does each point along the male direction, and how much
# does each edit change the predicted gender?

# %%
male = train.labels[:, col["Male"]]
by_gender = {
    "raw": directions["Smiling"],
    "balanced over Male": balanced_mean_difference(z_train, smile, male),
}
with torch.no_grad():
    for name, d in by_gender.items():
        after = model.decode((z_test[sample] + 2.5 * unit(d)).to(device)).cpu()
        r = edit_report(clf, before, after, "Smiling")
        cos = float(unit(d) @ unit(directions["Male"]))
        print(
            f"{name:20s} cosine with Male {cos:+.3f}   P(smiling) {r['target_change']:+.3f}   P(male) {r['changes']['Male']:+.3f}"
        )

# %% [markdown]
# Read the mouth table before the pictures. Orthogonalisation does stop the mouth from opening, but it
# also removes most of the smile; balancing leaves the vector almost where it was. Both say the
# same thing about *this* model: in its latent space "smiling" and "mouth open" lie along nearly
# the same direction (the cosine above), because on these faces both mostly mean "teeth
# showing", and a VAE under KL pressure spends few dimensions on the mouth. Within each mouth
# group, smiling faces still differ from the others mainly along that shared axis.
#
# When a model entangles two attributes this tightly, no linear fix on its codes can pull them
# apart: the information is not there to separate. The cures help when the entanglement comes
# from the *labels* (correlated examples) rather than from the *model*. InterfaceGAN (notebook 04)
# meets the same question with a GAN, and compares two latent spaces (Z and W) on it.

# %% [markdown]
# ## 4. Scoring against the truth
#
# SynthFaces knows each test face's true `smile` factor, so we can render what the face *would*
# look like with a bigger smile, and compare. The predictor's factor head measures how much the
# edit moved the smile; the counterfactual error is the pixel distance between the edited face and
# the true rendering of the same face with its smile moved by that much. (The reconstruction
# error of the VAE itself is the floor: an edit of 0 already differs from the truth by that.)
# If the error grows with α, the edit adds more that the true smile does not have (here, an
# opening mouth and some blur) than it gains by smiling.

# %%
if not is_synthfaces(root):
    print("skipped: true counterfactuals exist only for SynthFaces; CelebA has no factor file")
else:
    names, factors = read_factors(root)
    truth_rows = np.array([factors[names.index(f)] for f in test.filenames[:64]])
    k = clf.factor_index("smile")
    with torch.no_grad():
        base = model.decode(z_test[:64].to(device)).cpu()
        for alpha in [0.0, 1.5, 3.0]:
            edited = model.decode(
                (z_test[:64] + alpha * unit(directions["Smiling"])).to(device)
            ).cpu()
            moved = (clf.factors(edited)[:, k] - clf.factors(base)[:, k]).numpy()
            target = np.clip(truth_rows["smile"] + moved, 0, 1)
            err = counterfactual_error(edited, truth_rows, "smile", target)
            print(
                f"alpha {alpha:3.1f}: smile factor moved by {moved.mean():+.2f}; counterfactual error {err:.4f}"
            )

# %% [markdown]
# ## 5. Live sliders, in units a person can read
#
# A latent distance of 2 means nothing by itself. fel measures a slider in **σ**: the spread of
# the training codes along the direction, $\sigma_a=\operatorname{std}_i(z_i\cdot\hat d_a)$, so
# "+2 σ" moves a face twice as far as faces naturally differ along that line, in any model.
#
# How far may a slider go? Far enough to show the change, not so far that the edit spills onto
# the hair and background. `sweep_edit` measures both on fresh faces that lack the attribute:
# the step that raises the predicted probability by +0.5, and the last step before the edit
# spills or breaks: more than 5% of the pixels outside the inner face (brows to chin) move by more
# than 0.1, or more than 1% of the inner face turns into isolated dots, pixels that stand out
# from their 3×3 neighbourhood (`fel.metrics.speckles`; a model pushed too far breaks up like
# that). The slider stops there (or at 4 σ).

# %%
from fel.comparison import lacking, sweep_edit
from fel.directions import spread

with torch.no_grad():
    recon = torch.cat([model.decode(c.to(device)).cpu() for c in z_test[:512].split(256)])
EDITS = ["Smiling", "Mouth_Slightly_Open", "Narrow_Eyes"]
ranges = {}
for a in EDITS:
    fresh = z_test[lacking(clf, recon, a, at_least=16)[:64]]
    sweep = sweep_edit(model, clf, fresh, directions[a], a, spread(z_train, directions[a]),
                       steps=[0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4])  # fmt: skip
    print(sweep)
    end = min(sweep.clean_until, 4.0)
    ranges[a] = (-end, end)

# %% [markdown]
# `LatentEditor` puts it together: one slider per direction in σ units, the original beside the
# edit, a button for a random face (drawn from the prior) and a box to pick a test face. It starts
# on a test face that shows none of the three attributes, so every slider has something to add.
# The smile slider offers the raw vector and the one orthogonal to mouth-open (section 3) as a
# choice: the raw one is the default because it is the one that visibly smiles; the orthogonal one
# shows how much of "smiling" in these labels *is* the open mouth. Under the pictures, the status
# line says whether the edited face is still the same person: the cosine between the two faces'
# embeddings by fel's identity model (`fel.identity`, the course's stand-in for the ArcFace
# cosine papers report), against the threshold above which its verifier calls two faces one
# person. It runs the model on `fel.device()`: the GPU when there is one. Move the sliders in a
# live session.

# %%
start = int(lacking(clf, recon, EDITS)[0])
editor = LatentEditor(
    model,
    z_test[start],
    {
        "Smiling": {
            "raw": directions["Smiling"],
            "orthogonal to mouth": variants["orthogonal to mouth"],
        },
        "Mouth_Slightly_Open": directions["Mouth_Slightly_Open"],
        "Narrow_Eyes": directions["Narrow_Eyes"],
    },  # fmt: skip
    ranges=ranges,
    codes=z_train,
    faces=torch.from_numpy(test.images[:100].copy()).float() / 255,
    scale=5,  # 320 px on screen, as in notebooks 04 and 05
    identity=load_identity(device, required=False),
)
editor

# %% [markdown]
# The same widget can be driven from code; that is how fel tests it without a browser:

# %%
before_png = editor.image.value
editor.set(Smiling=ranges["Smiling"][1], Narrow_Eyes=1.5)
print(
    "picture changed:",
    editor.image.value != before_png,
    "| decode time:",
    f"{1000 * editor.decode_seconds:.1f} ms",
)
editor.reset()

# %% [markdown]
# ## Exercises
# 1. Regenerate SynthFaces with a strong Smiling–Male coupling (e.g. smile more common among
#    women, as in CelebA's labels) and repeat the `Male` comparison. When does balancing matter?
# 2. Make "smile, but keep the mouth closed *and* the eyes as they are" with `orthogonalize`.
# 3. How many labelled faces does a good smile vector need? Compute it from 50, 200, 1000 and all
#    training codes and plot the held-out AUC.
#
# <details><summary>Solution 1</summary>
#
# SynthFaces couples Smiling only with the mouth, so on the default set both smile vectors carry
# little gender (the table above). With a coupling (subsample the training codes so that 70% of
# smiling faces are women, then recompute):
#
# ```python
# g = torch.Generator().manual_seed(0)
# keep = (smile == 0) | (male == 0) | (torch.rand(len(smile), generator=g) < 0.4)
# raw = mean_difference(z_train[keep], smile[keep])
# bal = balanced_mean_difference(z_train[keep], smile[keep], male[keep])
# print(float(unit(raw) @ unit(directions["Male"])), float(unit(bal) @ unit(directions["Male"])))
# ```
# The raw vector now points away from `Male` (it feminises faces); the balanced one does not.
# On real CelebA this is the usual situation, and balancing is the cheap first fix.
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# d = orthogonalize(directions["Smiling"], [directions["Mouth_Slightly_Open"], directions["Narrow_Eyes"]])
# show(strip(model, z_test[7], d, [0, 1, 2, 3]), nrow=4)
# ```
# </details>
#
# <details><summary>Solution 3</summary>
#
# ```python
# g = torch.Generator().manual_seed(0)
# sizes, aucs = [50, 200, 1000, len(z_train)], []
# for n in sizes:
#     idx = torch.randperm(len(z_train), generator=g)[:n]
#     aucs.append(projection_auc(mean_difference(z_train[idx], smile[idx]), z_test, test.labels[:, col["Smiling"]]))
# plt.semilogx(sizes, aucs, "o-"); plt.xlabel("labelled faces"); plt.ylabel("held-out AUC"); plt.show()
# ```
# A few hundred labelled faces already give most of the AUC: the mean difference is a cheap,
# sample-efficient estimator.
# </details>
#
# ## Summary
# - An attribute vector is a difference of mean codes; its held-out projection AUC says how well
#   it captures the attribute.
# - Editing is arithmetic: $z + \alpha \hat d$, decoded. The predictor measures target change and
#   leakage; SynthFaces adds the error against the true counterfactual.
# - Correlated labels make correlated directions; orthogonalisation and balancing reduce the leak.
# - `LatentEditor` turns any model with `encode`/`decode` into a live slider editor.
#
# **Next:** `04_interfacegan_boundaries`: directions from linear classifiers in a GAN's latent space.
#
# ## References
# - A. B. L. Larsen, S. K. Sønderby, H. Larochelle, O. Winther. *Autoencoding beyond pixels using a
#   learned similarity metric*. ICML 2016.
# - T. White. *Sampling Generative Networks*. arXiv:1609.04468, 2016.
# - Y. Shen, J. Gu, X. Tang, B. Zhou. *Interpreting the Latent Space of GANs for Semantic Face
#   Editing*. CVPR 2020 (conditional manipulation).
