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
# # 06 · Three families, one yardstick
#
# Notebooks 02–05 built the same editor three times: a VAE, a GAN edited with InterfaceGAN
# boundaries, and Glow. Each notebook scored its own edits, at its own strengths, in its own
# latent units. Here the three meet on equal terms: **the same 16 test faces**, the **same three
# edits** (Smiling, Narrow_Eyes, Mouth_Slightly_Open), each made at the strength at which the
# attribute predictor sees the **same** rise of the target, and every result scored by the same
# functions.
#
# **You will**
# 1. get a code for the same faces three ways: an encoder (VAE), an exact inverse (Glow), an
#    optimisation (GAN inversion), and see what each costs and loses;
# 2. compute each family's attribute directions the way its notebook did;
# 3. find each edit's *matched strength* by bisection, and see where a model cannot get there;
# 4. look at 16 faces x 3 edits x 3 models side by side, then read the tables: target change,
#    leakage, whether the face is still the same person, counterfactual error, reconstruction,
#    bits/dim, latency, size, training time;
# 5. put each family's strengths and weaknesses in plain words;
# 6. edit your own photo with all three.
#
# **Prerequisites:** notebooks 03, 04 and 05. **Time to run:** about two minutes on a 2-core CPU.

# %%
import io
import time
from pathlib import Path

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

import fel
from fel.bench import print_table
from fel.checkpoints import is_shipped, resolve_checkpoint
from fel.classifier import load_pretrained as load_classifier
from fel.codes import encode_all
from fel.comparison import decode_latency, matched_strength, psnr, score_edit, signed_percent
from fel.data import CelebA, default_root, is_synthfaces
from fel.data.synthfaces import read_factors
from fel.directions import mean_difference, train_boundary, unit
from fel.flow import load_pretrained as load_glow
from fel.identity import load_pretrained as load_identity
from fel.interface_gan import load_pretrained as load_gan
from fel.interface_gan.boundaries import sample_and_score
from fel.vae import load_pretrained as load_vae
from fel.viz import grid
from fel.widgets import PhotoEditor

device = fel.device()
root = default_root()
fel.seed_everything(0)
clf = load_classifier(device)
identity = load_identity(device, required=False)  # is it still the same person? (section 5)
vae = load_vae(device)
glow = load_glow(device)
G = load_gan(device)
gan = G.w_space()  # the GAN seen from W: encode = inversion into W, decode = synthesis
G.truncation = 1.0  # real faces are edited without truncation (notebook 04, section 8)
models = {"VAE": vae, "GAN": gan, "Glow": glow}
SIZE = {"VAE": vae.config.size, "GAN": G.config.size, "Glow": glow.config.size}  # from the models
ATTRS = ["Smiling", "Narrow_Eyes", "Mouth_Slightly_Open"]
print("device:", device, "| data:", root)

# %% [markdown]
# ## 1. The same 16 faces, three ways to a code
#
# We take the first 16 test faces whose labels show **none** of the three attributes (not
# smiling, eyes open, mouth closed), so every edit has room to act. Each model reads them at its
# own size (`SIZE`, taken from the models); the shipped three all work at 64x64, so the
# comparison is like for like.
#
# | family | code of a face $x$ | cost | exact? |
# |---|---|---|---|
# | VAE | $z = \mu_\phi(x)$, the encoder's posterior mean (*amortised*: one network pass, learnt for all faces at once) | one forward pass | no: the decoder gives back a blurred $x$ |
# | Glow | $z = f(x)$, the flow itself; $x = f^{-1}(z)$ | one forward pass | yes, to float rounding |
# | GAN | $w^\star = \arg\min_w \lVert G(w) - x\rVert^2$, starting from $\bar w$ | 300 Adam steps through $G$ | no: the closest face $G$ can make |
#
# The GAN's 16 faces are inverted in one batched call, the slowest step of this notebook. The
# inversion matches pixels only: `G.encode` can also match the predictor's features
# (`classifier=clf`), but here the predictor is the judge, so it stays out of the encoding
# (exercise 3 measures what it would change). Each encoder is called once untimed first, so the
# times below do not include one-off start-up costs.

# %%
S = SIZE["VAE"]
test = {s: CelebA(root, split="test", size=s) for s in set(SIZE.values())}
columns = [test[S].attr_names.index(a) for a in ATTRS]
clean = (test[S].labels[:, columns] == 0).all(1)  # faces showing none of the edits: first
idx = torch.cat([clean.nonzero().flatten(), (~clean).nonzero().flatten()])[:16].numpy()
faces = {s: torch.from_numpy(test[s].images[idx]).float() / 255 for s in test}
truth = None  # SynthFaces' ground truth factors, for the counterfactual scores; CelebA has none
if is_synthfaces(root):
    names, factor_rows = read_factors(root)
    row_of = {name: i for i, name in enumerate(names)}
    truth = factor_rows[[row_of[test[S].filenames[i]] for i in idx]]

codes, encode_seconds = {}, {}
for m, model in models.items():
    x = faces[SIZE[m]].to(device)
    with (
        torch.no_grad()
    ):  # warm-up: thread pools and kernel caches (one inversion step for the GAN)
        model.encode(x[:1], steps=1, progress=False) if m == "GAN" else model.encode(x[:1])
    t0 = time.perf_counter()
    if m == "GAN":
        codes[m] = model.encode(x, steps=300).cpu()
    else:
        codes[m] = encode_all(model, x)
    encode_seconds[m] = time.perf_counter() - t0
with torch.no_grad():
    recon = {m: model.decode(codes[m].to(device)).cpu() for m, model in models.items()}
recon_psnr = {m: psnr(faces[SIZE[m]], recon[m]) for m in models}
recon_identity = {  # "n/a" without an identity model for the data in use
    m: f"{float(identity.similarity(faces[SIZE[m]], recon[m]).mean()):.2f}" if identity else "n/a"
    for m in models
}
for m in models:
    print(f"{m:5s} code {tuple(codes[m].shape)}  encoded 16 faces in {encode_seconds[m]:6.2f} s  "
          f"PSNR of decode(encode(x)) {recon_psnr[m]:6.1f} dB, identity cosine "
          f"{recon_identity[m]}")  # fmt: skip
print(f"inverting into the GAN took {encode_seconds['GAN'] / encode_seconds['VAE']:,.0f} times "
      "as long as the VAE's encoder")  # fmt: skip


# %%
def big(x: torch.Tensor, size: int = 64) -> torch.Tensor:
    """Enlarge (nearest neighbour, for display only) to size x size."""
    return x if x.shape[-1] == size else F.interpolate(x, size=size, mode="nearest")


def labelled_grid(rows: list[torch.Tensor], labels: list[str], title: str, width: float = 14):
    """One row of images per entry of ``rows``, each labelled on the left."""
    tiles = grid(torch.cat(rows), nrow=len(rows[0]))
    fig, ax = plt.subplots(figsize=(width, width * tiles.shape[0] / tiles.shape[1]))
    ax.imshow(tiles)
    step = tiles.shape[0] / len(rows)
    ax.set_yticks([(i + 0.5) * step for i in range(len(rows))], labels)
    ax.set_xticks([]), ax.tick_params(length=0), ax.set_title(title)
    for spine in ax.spines.values():
        spine.set_visible(False)
    plt.tight_layout()
    plt.show()


labelled_grid([faces[64], *(big(recon[m]) for m in models)],
              ["test face", *(f"{m} {recon_psnr[m]:.0f} dB" for m in models)],
              "the 16 test faces and what each model gives back: decode(encode(x))", width=12)  # fmt: skip

# %% [markdown]
# Glow gives the faces back exactly (its PSNR is float rounding; only its resolution is lower).
# The VAE keeps identity, colours and hair but blurs. The GAN can only return faces it is able
# to *generate*: what the generator draws poorly comes back as the nearest thing it can draw (look
# at the hats). Every edit below starts from these
# reconstructions, and is scored against them.
#
# ## 2. Directions, as each notebook made them
#
# - **VAE and Glow** (notebooks 03, 05): mean-difference vectors $d_a = \bar z_P - \bar z_N$ of
#   2,000 encoded training faces, split by their dataset labels.
# - **GAN** (notebook 04): InterfaceGAN boundaries in W. Sample 2,000 codes, let the predictor
#   score their faces, fit a linear SVM between the top and bottom 5%, keep its unit normal.
#
# For each direction we also measure $\sigma$, the standard deviation of the training codes along
# it: a ruler that makes edit sizes comparable across latent spaces.

# %%
N = 2000
train = {s: CelebA(root, split="train", size=s) for s in set(SIZE.values())}
labels = {a: train[S].labels[:N, train[S].attr_names.index(a)] for a in ATTRS}
train_codes = {m: encode_all(models[m], train[SIZE[m]].images[:N]) for m in ("VAE", "Glow")}
directions = {
    m: {a: mean_difference(train_codes[m], labels[a]) for a in ATTRS} for m in train_codes
}

samples = sample_and_score(G, clf, n=N, psi=0.7, seed=0)
train_codes["GAN"] = samples["w"]
directions["GAN"] = {}
for a in ATTRS:
    scores = samples["scores"][:, clf.attribute_index(a)]
    directions["GAN"][a], fit = train_boundary(samples["w"], scores, chosen_ratio=0.05)
    print(f"GAN {a:20s} P>0.5 in {float((scores > 0.5).float().mean()):5.1%} of samples "
          f"({float(labels[a].float().mean()):5.1%} of real training faces); "
          f"boundary validation accuracy {fit['val_accuracy']:.3f}")  # fmt: skip
sigma = {m: {a: float((train_codes[m] @ unit(d)).std()) for a, d in directions[m].items()}
         for m in models}  # fmt: skip

# %% [markdown]
# Note the Narrow_Eyes line: about one real training face in eight is labelled narrow-eyed, but
# the predictor finds narrow eyes in almost none of the GAN's samples (notebook 04 compares the
# predictor's rates on real and generated faces for seven attributes). The generator has (nearly) dropped that part of the data, a
# classic GAN failure (*mode dropping*): the SVM still separates the least and most narrow-eyed
# samples, but along a direction where there is little narrowing to find.
#
# ## 3. Matched strength
#
# "$\alpha = 2$" means different things in a 128-number VAE code, a 128-number W code and Glow's
# 12,288-number code. So instead of fixing $\alpha$ we fix the *effect*: for each model and
# attribute, find the $\alpha$ at which the mean predicted probability of the target over our 16
# faces rises by $\Delta = 0.5$,
#
# $$g(\alpha) = \frac{1}{16}\sum_{i} p_a\big(\mathrm{dec}(z_i + \alpha\,\hat d_a)\big) - \frac{1}{16}\sum_i p_a\big(\mathrm{dec}(z_i)\big) = \Delta .$$
#
# If $g$ increases with $\alpha$ (what an attribute direction is for), bisection on
# $[0, \alpha_{\max}]$ finds the root in a dozen decodes (`fel.comparison.matched_strength`). We
# allow at most $\alpha_{\max} = 4\sigma$; beyond that a code is far outside what the model was
# trained on. If $g(\alpha_{\max}) < \Delta$, the model *cannot* make that edit, and the result
# says so instead of returning a number.

# %%
RISE, MAX_SIGMA = 0.5, 4.0
matched, edited = {}, {}
for m, model in models.items():
    for a in ATTRS:
        r = matched_strength(model, clf, codes[m], directions[m][a], a, rise=RISE,
                             max_alpha=MAX_SIGMA * sigma[m][a])  # fmt: skip
        matched[m, a] = r
        with torch.no_grad():
            moved = codes[m] + r.alpha * unit(directions[m][a])
            edited[m, a] = model.decode(moved.to(device)).cpu()
        print(f"{m:5s} {a:20s} {r.alpha / sigma[m][a]:4.2f} sigma   {r}")

# %% [markdown]
# ## 4. Side by side
#
# Each row is one test face. For each model: what it makes of the face, then its three edits at
# matched strength. Read along a row to compare the families on one face; down a column to see
# one edit on all 16.

# %%
short = {"Smiling": "+smile", "Narrow_Eyes": "+narrow eyes", "Mouth_Slightly_Open": "+mouth open"}
label = {"Smiling": "+smile", "Narrow_Eyes": "+narrow", "Mouth_Slightly_Open": "+mouth"}
blocks = [("test\nface", faces[64])]
for m in models:
    blocks.append((f"{m}\nencoded", big(recon[m])))
    blocks += [(f"{m}\n{label[a]}", big(edited[m, a])) for a in ATTRS]
columns_px = [grid(images, nrow=1, padding=1) for _, images in blocks]  # one [H, 66, 3] each
gap = np.full((columns_px[0].shape[0], 8, 3), 255, np.uint8)
pieces, centres, x0 = [], [], 0
for k, column in enumerate(columns_px):
    if k in (1, 5, 9):  # a gap before each model's block
        pieces.append(gap)
        x0 += gap.shape[1]
    pieces.append(column)
    centres.append(x0 + column.shape[1] / 2)
    x0 += column.shape[1]
canvas = np.concatenate(pieces, 1)
h, w, top = canvas.shape[0], canvas.shape[1], 60  # shown at its own resolution: 1 pixel = 1 pixel
fig = plt.figure(figsize=(w / 100, (h + top) / 100), dpi=100)
ax = fig.add_axes((0, 0, 1, h / (h + top)))
ax.imshow(canvas, interpolation="nearest"), ax.axis("off")
for x, (title, _) in zip(centres, blocks):
    ax.text(x, -4, title, ha="center", va="bottom", fontsize=7.5)
fig.suptitle(f"matched rise of +{RISE}", fontsize=9, y=0.998)
plt.show()

# %% [markdown]
# Things to look for: the VAE's and Glow's smile and mouth edits look alike (both show teeth: in
# these faces' labels smiles and open mouths go together, notebook 03); narrow eyes are a small
# change at 64 pixels, but the eyes do shrink; in the GAN's narrow-eyes column the eyes do not
# narrow (section 3 said why), yet the face changes elsewhere: that edit has the largest
# outside-region change and counterfactual error of all nine in the table below. The GAN's smile
# edit changes more than the mouth on several faces (hair, hats; the predictor's list of side
# effects in section 6 says what else).
#
# ## 5. The tables
#
# **Edits** (per model and attribute, over the 16 faces, each against the model's own
# unedited rendering):
# - *alpha / sigma*: the matched strength in the ruler of section 2 (how far the model had to go);
# - *target*: the rise reached (matched by construction to +0.5, unless the model could not);
# - *leakage*: mean absolute change of the other attributes' probabilities (lower is better);
# - *outside px*: mean absolute pixel change outside the edited region (lower is better; at each
#   model's own resolution, 64x64 for all three shipped models);
# - *dots*: the share of inner-face pixels that stand out from their 3x3 neighbourhood after the
#   edit, minus the share before (`fel.metrics.speckles`, the measure that ends notebook 05's
#   clean range): an edit that breaks the face up into specks scores here, however small its
#   pixel change (lower is better; notebook 05 calls more than +1% broken);
# - *identity*: the cosine between the identity embeddings of each face before and after the
#   edit (higher is better). The embedding (`fel.identity`, `python -m fel train identity`) was
#   trained with a CosFace loss on the identity labels of the training faces and is scored on
#   people it never saw: above its threshold (printed with the table) its verifier calls two
#   faces one person. It is the course's stand-in for the ArcFace cosine that papers on face
#   editing report, whose weights cannot be downloaded here;
# - *cf error*: mean absolute pixel distance to SynthFaces' **true counterfactual**, the same
#   face rendered with its factor moved as much as the predictor's factor head says the edit moved
#   it (notebook 03, section 4); *floor*: the same distance for the unedited rendering, what the
#   reconstruction alone costs. Both at the smallest resolution the models share.

# %%
rows, scores = [], {}
for m in models:
    for a in ATTRS:
        s = score_edit(clf, recon[m], edited[m, a], a, faces=truth,
                       counterfactual_size=min(SIZE.values()), identity=identity)  # fmt: skip
        scores[m, a] = s
        r = matched[m, a]
        rows.append([m, a, f"{r.alpha / sigma[m][a]:.2f}" + ("" if r.reached else " (limit)"),
                     f"{s['target_change']:+.3f}", f"{s['leakage']:.3f}", f"{s['preservation']:.4f}",
                     signed_percent(s["artefacts"]), f"{s['identity']:.2f}" if identity else "n/a",
                     f"{s['counterfactual_error']:.4f}" if truth is not None else "n/a",
                     f"{s['counterfactual_floor']:.4f}" if truth is not None else "n/a"])  # fmt: skip
verdict = f"one person above {identity.threshold:.2f}" if identity else "no identity model"
_ = print_table(f"edits at a matched rise of +{RISE}, 16 test faces (identity: {verdict})",
                ["model", "edit", "alpha / sigma", "target", "leakage", "outside px", "dots",
                 "identity", "cf error", "floor"], rows)  # fmt: skip

# %% [markdown]
# **Models**: reconstruction of the 16 faces (PSNR of decode(encode(x)), at each model's own
# resolution, and the identity cosine between each face and its reconstruction), test-split bits/dim where a likelihood exists (from each checkpoint's metadata:
# the VAE's is an upper bound through the ELBO, Glow's exact up to dequantisation), the time to encode the 16
# faces, decode latency for one face (median of 20, after a warm-up), parameters (the GAN's:
# the generator only, the discriminator is needed only for training), checkpoint file size and
# training time, from the checkpoints' metadata (all three were trained on the same 2-core CPU,
# as the README records).

# %%
checkpoint = {"VAE": "vae.pt", "GAN": "gan.pt", "Glow": "glow.pt"}
rows = []
for m, model in models.items():
    meta = G.meta if m == "GAN" else model.meta
    bpd = meta.get("test", {}).get("bits_per_dim")
    path = resolve_checkpoint(checkpoint[m])
    n_params = sum(p.numel() for p in model.parameters())
    ms = decode_latency(model, codes[m][:1], repeats=20)
    rows.append([m, f"{SIZE[m]}x{SIZE[m]}", f"{recon_psnr[m]:.1f}", recon_identity[m],
                 f"{bpd:.3f}" + (" (bound)" if m == "VAE" else "") if bpd else "none (no likelihood)",
                 f"{encode_seconds[m]:.2f}", f"{ms:.1f}", f"{n_params / 1e6:.2f} M",
                 f"{path.stat().st_size / 1e6:.1f} MB" if path.is_file() else "not shipped yet",
                 f"{meta['train_seconds'] / 60:.0f} min"])  # fmt: skip
_ = print_table("the three models", ["model", "size", "recon PSNR dB", "recon identity", "bits/dim",
                                     "encode 16 faces (s)", "decode 1 face (ms)", "parameters",
                                     "checkpoint", "training"], rows)  # fmt: skip

# %% [markdown]
# ## 6. In plain words
#
# First, who did best on each measure of each edit (lower is better for the first five, higher
# for identity; "added" is the counterfactual error minus its floor, the part the edit itself
# is responsible for):

# %%
measures = {"leakage": lambda s: s["leakage"], "outside px": lambda s: s["preservation"],
            "dots": lambda s: s["artefacts"]}  # fmt: skip
if truth is not None:  # SynthFaces only
    measures["cf error"] = lambda s: s["counterfactual_error"]
    measures["added"] = lambda s: s["counterfactual_error"] - s["counterfactual_floor"]
if identity:  # higher is better: the best has the lowest minus cosine
    measures["identity"] = lambda s: -s["identity"]
for a in ATTRS:
    reached = [m for m in models if matched[m, a].reached]
    if not reached:
        print(f"{a:20s} no model reached +{RISE}")
        continue
    best = {k: min(reached, key=lambda m, f=f: f(scores[m, a])) for k, f in measures.items()}
    print(f"{a:20s} " + "   ".join(f"{k}: {m}" for k, m in best.items())
          + ("" if len(reached) == len(models) else
             f"   (not reached: {', '.join(m for m in models if m not in reached)})"))  # fmt: skip
print("\nlargest side effects of the smile edit (mean change of P):")
for m in models:
    changes = scores[m, "Smiling"]["changes"]
    side = sorted((k for k in changes if k != "Smiling"), key=lambda k: -abs(changes[k]))[:3]
    print(f"{m:5s} " + ", ".join(f"{k} {changes[k]:+.2f}" for k in side))

# The claims below about the shipped models, checked (a retrained model that breaks one stops
# the notebook here; models of yours, from FEL_CHECKPOINTS, are measured, not judged):
SHIPPED = all(is_shipped(f) for f in ("vae.pt", "glow.pt", "gan.pt", "classifier.pt"))
if SHIPPED:
    assert not matched["GAN", "Narrow_Eyes"].reached  # the dropped mode
    assert all(matched[m, a].reached for m in ("VAE", "Glow") for a in ATTRS)
    assert all(best_leak == "Glow" for best_leak in
               (min(models, key=lambda m, a=a: scores[m, a]["leakage"]) for a in ATTRS))  # fmt: skip
    assert all(s["artefacts"] < 0.01 for s in scores.values())  # at +0.5 nothing breaks up
if SHIPPED and identity:  # every reached edit keeps the person; the GAN's smile keeps the least
    kept = {
        (m, a): scores[m, a]["identity"] for m in models for a in ATTRS if matched[m, a].reached
    }
    assert min(kept.values()) > identity.threshold
    assert min(kept, key=kept.get) == ("GAN", "Smiling")

# %% [markdown]
# What the tables show on these 16 faces (re-read them after retraining anything):
#
# - **Glow** is the most faithful editor here. Its codes are exact, so an edit starts from the
#   face itself: it has the lowest counterfactual error and the lowest floor, and the lowest
#   leakage into other attributes for all three edits. It does not win everything: the VAE's
#   smile and mouth edits change about as few pixels outside the mouth (a tie, given the
#   resolution caveat above), and add less error of
#   their own on top of their floor (a blurry decoder also makes blurry, small changes). Glow's
#   costs: a decode many times slower than the VAE's (a full reverse pass through 32 flow
#   steps), over an hour of CPU training, and a code as large as the image. Its raw smile
#   also opens the mouth less than the other two do (exercise 2).
# - **The VAE** is the fastest and the cheapest: one pass to encode, a millisecond or two to
#   decode, a useful model in 20 minutes. Its price is blur (about 31 dB, a counterfactual floor
#   more than twice Glow's) and entanglement: every edit leaks more than Glow's, and narrow eyes
#   need the largest step of its three edits (over 2 sigma), with the most leakage and the most
#   pixels moved outside the eyes. Its bits/dim is only a bound.
# - **The GAN** learns from samples alone: no encoder, no likelihood, the smallest generator.
#   Real faces reach it only through an optimisation, about a second per face, more than a
#   thousand times the VAE's encoding (the ratio is printed in section 1), and the result is still only the nearest face the generator can draw: a lower
#   PSNR than the VAE's and the highest counterfactual floor. Its smile and mouth edits of those
#   inverted codes leak the most into other attributes (see its smile's side effects above) and
#   move the most pixels outside the edited region.
#   And what the generator has dropped, no direction brings back: the predictor finds narrow eyes
#   in none of its samples, and its Narrow_Eyes edit stops at the 4-sigma limit far short of
#   +0.5. What a GAN is good at, sharp samples from noise, is not what this yardstick measures
#   (notebook 04 measures it with the Fréchet distance).
# - **Specks?** At this matched +0.5 no edit breaks the face up: every *dots* figure is within
#   0.2 points of zero. Glow's smile and mouth do break up, but only from about 2.5 sigma on, twice
#   the strength used here (notebook 05's sweep).
# - **Same person?** The identity cosines tell the same story in one number each. Glow's
#   reconstruction is the face itself (1.00) and its three edits keep about 0.93. The VAE's
#   smile and mouth edits keep the most (about 0.95 against its own reconstruction), its narrow
#   eyes less (about 0.8), and its blurry reconstruction is already a step away from the photo
#   (about 0.8). The GAN's inversion keeps the least (about 0.6), and its smile edit moves the
#   person furthest (about 0.6; its mouth edit about 0.9). Every reached edit stays above the
#   verifier's threshold, so none of them turns the face into "another person" by this measure,
#   but the GAN's smile comes closest: a learner sees it as the hair and skin that change with it.
#
# The yardstick has limits of its own: one predictor judges every edit, so a model that learns
# to fool it would score well; 16 faces give means with visible noise; the counterfactual error
# is defined only on SynthFaces.
#
# ## 7. Edit your own photo
#
# `fel.widgets.PhotoEditor` takes any photo: it finds the face (OpenCV's Haar cascades), aligns
# the eyes to CelebA's positions, crops as in training, encodes with the model and opens slider
# editing. Below, one editor per family (the GAN's encodes by inversion into W: a few seconds).
# Upload a photo of your own in a live session; each slider is in σ, up to $4\sigma$.
#
# This executed notebook has no upload, so it feeds every editor the same real photograph:
# matplotlib's sample portrait of Grace Hopper (a US Navy photo in the public domain), read
# from the matplotlib you installed. `fel.faces` finds her eyes behind the glasses (four
# cascade searches must agree, then each eye moves onto its pupil) and levels them; on this
# photo and on a second real one, turned up to 30° or scaled 0.5× to 2×, the eyes land within
# about 2 pixels of CelebA's places (`python -m fel bench faces`).

# %%
png = (Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").read_bytes()

editors = {}
for m, model in models.items():
    editors[m] = PhotoEditor(model, directions[m], ranges=(-MAX_SIGMA, MAX_SIGMA), size=SIZE[m],
                             scale=3, codes=train_codes[m], identity=identity)  # fmt: skip
    editors[m].load_bytes(png, name="grace_hopper.jpg")
    print(m, "|", "error: " + str(editors[m].error) if editors[m].error else "aligned and encoded")

# %% [markdown]
# Each editor's sliders set to the matched strengths of section 3, one edit at a time; the
# pictures are the widgets' own PNGs. Those strengths were matched on the 16 test faces: on one
# new face the same step can do more or less (compare the three smiles).


# %%
def widget_picture(value: bytes, size: int = 192) -> np.ndarray:
    return np.asarray(
        Image.open(io.BytesIO(value)).convert("RGB").resize((size, size), Image.NEAREST)
    )


fig, axes = plt.subplots(3, 5, figsize=(11, 7))
for ax_row, (m, photo_editor) in zip(axes, editors.items()):
    ed = photo_editor.editor
    pictures = [(photo_editor.photo.value, "aligned photo"), (ed.original.value, f"{m}: encoded")]
    for a in ATTRS:
        ed.set(**{a: matched[m, a].alpha / sigma[m][a]})  # the sliders are in sigma
        pictures.append((ed.image.value, f"{m} {short[a]}"))
        ed.reset()
    for ax, (value, title) in zip(ax_row, pictures):
        ax.imshow(widget_picture(value)), ax.set_title(title, fontsize=9), ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The live editors, one tab per family (upload your photo in the tab you want):

# %%
tabs = widgets.Tab(children=[e.widget for e in editors.values()])
tabs.titles = tuple(editors)
tabs

# %% [markdown]
# What models trained on SynthFaces make of a real face, plainly: none of them has ever seen
# one. The **VAE** encodes her as the nearest SynthFaces face it can draw (the hat survives as
# a dark band, the glasses and the wrinkles do not) and then edits that face, so its smile is
# a cartoon smile on a cartoon. **Glow** gives the photo back exactly, because its code is
# exact, and its directions then paint SynthFaces' mouth and eyes onto a real face: a white
# cartoon smile with red speckles around it, red streaks on the glasses for narrow eyes. The
# named change, in another style, and not a good one. The **GAN** returns a blurred face from
# its own range, and its edits of that code move the hair and skin as much as the mouth (its
# narrow-eyes edit turns the hair blond). The same cells with
# checkpoints trained on your CelebA (`python -m fel train course --data celeba ...`, then
# `FEL_CHECKPOINTS` and `FEL_CELEBA_ROOT`, see the README) encode real faces with models and
# directions made from real faces; that is the only way to edit a real photo well.
# `python -m fel edit photo.jpg --model vae --edit Smiling=+2 --out edited.png` does the same
# outside a notebook, and each editor's "save PNG" and "save sweep (GIF)" buttons write what you
# made to `runs/edits/`.
#
# ## Exercises
# 1. **How far can each family go?** Ask for a rise of +0.75 instead of +0.5 (and, on smiling
#    faces, a fall of −0.4). Which edits become unreachable within $4\sigma$, and for which model?
# 2. **Smile, mouth closed, in all three.** Make a smile direction that keeps the mouth as it is
#    (orthogonalise for the VAE and Glow, `project_boundary` for the GAN), find its matched
#    strength, and compare the mouth's change with the raw smile's. Which family can separate the
#    two?
# 3. **The price of inversion.** Invert the 16 faces into the GAN with 50, 150 and 300 steps, and
#    with the predictor's feature term added to the loss (`classifier=clf`). How do PSNR, time and the
#    smile edit's leakage move?
#
# <details><summary>Solution 1</summary>
#
# ```python
# for m, model in models.items():
#     for a in ATTRS:
#         r = matched_strength(model, clf, codes[m], directions[m][a], a, rise=0.75,
#                              max_alpha=MAX_SIGMA * sigma[m][a])
#         print(m, a, r)
# smiling = (test[64].labels[:, columns[0]] == 1).nonzero().flatten()[:16].numpy()
# z = encode_all(vae, torch.from_numpy(test[64].images[smiling]).float() / 255)
# print(matched_strength(vae, clf, z, directions["VAE"]["Smiling"], "Smiling", rise=-0.4,
#                        max_alpha=MAX_SIGMA * sigma["VAE"]["Smiling"]))
# ```
# Measured with the shipped models: every edit reaches +0.75 (the VAE's and Glow's narrow eyes
# at about 3 sigma) except the GAN's Narrow_Eyes, which gives +0.01 at the 4-sigma limit:
# `reached=False` says so instead of handing back the limit as if it were an answer. Removing a
# smile works like adding one (a negative `rise` searches along $-\hat d$; the VAE takes
# alpha -1.77 for -0.4).
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# from fel.directions import orthogonalize, project_boundary
# for m, model in models.items():
#     d_smile, d_mouth = directions[m]["Smiling"], directions[m]["Mouth_Slightly_Open"]
#     d = project_boundary(d_smile, d_mouth) if m == "GAN" else orthogonalize(d_smile, [d_mouth])
#     s = float((train_codes[m] @ unit(d)).std())
#     r = matched_strength(model, clf, codes[m], d, "Smiling", rise=RISE, max_alpha=MAX_SIGMA * s)
#     with torch.no_grad():
#         after = model.decode((codes[m] + r.alpha * unit(d)).to(device)).cpu()
#     mouth = score_edit(clf, recon[m], after, "Smiling")["changes"]["Mouth_Slightly_Open"]
#     raw = scores[m, "Smiling"]["changes"]["Mouth_Slightly_Open"]
#     print(f"{m:5s} {r}   mouth {raw:+.3f} (raw smile) -> {mouth:+.3f} (mouth held)")
# ```
# First, the raw smiles: all three open the mouth, Glow's the least. Held to a closed mouth,
# the VAE's smile cannot reach +0.5 within 4 sigma: notebook 03 found its smile and mouth
# vectors nearly parallel, so orthogonalising leaves too little smile (the mouth does stay
# still). Glow's codes keep the two further apart (notebook 05): its conditional smile reaches
# the rise with the mouth unchanged. The GAN sits in between (compare its cosine matrix in
# notebook 04). Measured: the raw smiles open the mouth by +0.57 (VAE), +0.54 (GAN) and +0.29
# (Glow); held, the VAE's smile reaches only +0.29 at the limit (mouth +0.01), the GAN's +0.42
# (mouth still +0.27: the predictor's smile and mouth are not exactly linear in W), Glow's the
# full +0.5 (mouth -0.02).
# </details>
#
# <details><summary>Solution 3</summary>
#
# ```python
# for steps, features in [(50, None), (150, None), (300, None), (300, clf)]:
#     t0 = time.perf_counter()
#     w = gan.encode(faces[64].to(device), steps=steps, classifier=features, progress=False)
#     seconds = time.perf_counter() - t0
#     with torch.no_grad():
#         before = gan.decode(w).cpu()
#         after = gan.decode(w + matched["GAN", "Smiling"].alpha * unit(directions["GAN"]["Smiling"]).to(device)).cpu()
#     r = score_edit(clf, before, after, "Smiling")
#     print(steps, features is not None, f"{seconds:.0f} s", f"{psnr(faces[64], before):.1f} dB",
#           f"target {r['target_change']:+.3f} leakage {r['leakage']:.3f}")
# ```
# Time grows linearly with the steps (each is a forward and a backward pass through the
# generator), PSNR with diminishing returns: measured, 25.7, 27.4 and 28.3 dB after 50, 150 and
# 300 steps (3, 9, 18 s on an idle 2-core CPU). The feature term cost 9 dB of PSNR (19.5 dB)
# and a quarter more time, for a smile edit that leaks about as much (0.063 against 0.065): it
# pulls the code towards what the predictor sees rather than towards the pixels. That is also
# why it stays out of this notebook's comparison: the judge should not shape the codes it then
# judges. However many steps, the inversion cannot return what the generator cannot draw.
# </details>
#
# ## Summary
# - The three families reach a face's code differently: amortised and approximate (VAE), exact
#   (Glow), by optimisation (GAN). That choice sets what an edit of a *real* face can keep.
# - Fair comparison fixes the effect, not the step: the matched strength is the $\alpha$ that
#   gives the same rise of the target, found by bisection, and an edit a model cannot make is
#   reported as such.
# - At matched strength the side effects differ: leakage, pixels outside the edited region, and
#   the distance to the true counterfactual, which SynthFaces alone can provide.
# - Cost matters too: decode latency, encoding time, parameters, training time, and likelihood
#   (bits/dim) where the model has one.
#
# ## References
# - D. P. Kingma, M. Welling. *Auto-Encoding Variational Bayes*. ICLR 2014.
# - A. B. L. Larsen, S. K. Sønderby, H. Larochelle, O. Winther. *Autoencoding beyond pixels using a
#   learned similarity metric*. ICML 2016.
# - Y. Shen, J. Gu, X. Tang, B. Zhou. *Interpreting the Latent Space of GANs for Semantic Face
#   Editing*. CVPR 2020 (InterfaceGAN).
# - D. P. Kingma, P. Dhariwal. *Glow: Generative Flow with Invertible 1x1 Convolutions*. NeurIPS 2018.
# - W. Xia, Y. Zhang, Y. Yang, J.-H. Xue, B. Zhou, M.-H. Yang. *GAN Inversion: A Survey*. TPAMI 2022.
# - S. Arora, Y. Zhang. *Do GANs actually learn the distribution? An empirical study*. 2017
#   (mode dropping).
# - L. Theis, A. van den Oord, M. Bethge. *A note on the evaluation of generative models*. ICLR 2016.
