"""What differential privacy means for the table models: the private networks and the released domain.

A table model's schema and encoding (category lists and frequencies, value ranges, the Gaussian modes of
numbers) would read the rows. Under ``--dp`` the model first spends :data:`DOMAIN_SHARE` of epsilon on one
Gaussian release of column histograms and refits its schema and encoding on a stand-in table drawn from
them (:mod:`genforge.tables.data.private_domain`); the user's metadata can give the category lists and
ranges instead. DP-SGD covers the networks' training; the accountant composes the two, and every report
says which parts came from metadata.
"""

from __future__ import annotations

import torch

from genforge.core.train.private import PrivateParts
from genforge.tables.data import private_domain as domain

CTGAN_WEIGHT_CLIP = 0.01  # WGAN's weight clipping (Arjovsky et al. 2017), as DP-WGAN (Xie et al. 2018)
DOMAIN_SHARE = 0.1        # of epsilon, for the column histograms the encoding is fitted on
DELTA_SHARE = 0.1         # of delta, for keeping only the categories above the noise threshold


def table_parts(model, optimizers: dict[str, tuple[str, ...]], **options) -> PrivateParts:
    """:class:`PrivateParts` for a neural table model: its private networks plus the domain release, whose
    L2 sensitivity is the square root of the number of histograms (a row adds one to a bin of each)."""
    schema = model.schema
    domain.refuse_kinds(schema, model.name)
    given = domain.given_fields(model.metadata, schema)
    delta_share = DELTA_SHARE if domain.open_categories(schema, given) else 0.0
    return PrivateParts(optimizers, unit="row", releases=((domain.DOMAIN_RELEASE, DOMAIN_SHARE,
                                                           domain.histograms(schema, given) ** 0.5),),
                        delta_share=delta_share,
                        preprocessing=domain.describe(schema, given, DOMAIN_SHARE, delta_share), **options)


def ctgan_parts(model) -> PrivateParts:
    """CTGAN under DP-SGD: the discriminator is private (per pac group of rows, each row in one group); its
    gradient penalty cannot be clipped per example, so the Lipschitz constraint is WGAN's weight clipping;
    training-by-sampling (which picks rows by their categories' frequencies) becomes uniform rows conditioned on
    their own categories; the category frequencies the generator samples with come from the released
    histograms."""
    return table_parts(model, {"D": ("D",)}, per_step=lambda batch: batch // model.config.pac,
                       weight_clip=CTGAN_WEIGHT_CLIP,
                       what="the discriminator (the generator sees rows only through it); WGAN with weight clipping "
                            "instead of the gradient penalty; uniform rows instead of training-by-sampling")


def mechanism_domain(model, spec, df) -> dict:
    """For a private-by-construction mechanism (MST, AIM): its budget split and domain. If the metadata gives
    every column's categories or range, the whole budget goes to the mechanism; otherwise the column histograms
    are released first with :data:`DOMAIN_SHARE` of epsilon and a tenth of delta (half of it for thresholding
    where categories come from the rows), the schema refitted on them, and the two composed sequentially."""
    from genforge.core.privacy.budget import release_noise

    schema = model.schema
    given = domain.given_fields(model.metadata, schema)
    if domain.histograms(schema, given) == len(schema.columns) and not domain.open_categories(schema, given):
        return {"mechanism_epsilon": spec.epsilon, "mechanism_delta": spec.delta,
                "preprocessing": "the domain (category lists, numeric ranges) came from the user's metadata, not the "
                                 "data"}
    open_cats = domain.open_categories(schema, given)
    d_release = spec.delta * DELTA_SHARE / (2 if open_cats else 1)
    z = release_noise(spec.model_copy(update={"delta": d_release}), DOMAIN_SHARE)
    plan = {"releases": [{"what": domain.DOMAIN_RELEASE, "share": DOMAIN_SHARE, "delta": d_release,
                          "sensitivity": domain.histograms(schema, given) ** 0.5, "noise_multiplier": z}],
            "delta_thresholding": spec.delta * DELTA_SHARE - d_release if open_cats else 0.0,
            "mechanism_epsilon": spec.epsilon * (1 - DOMAIN_SHARE), "mechanism_delta": spec.delta * (1 - DELTA_SHARE),
            "preprocessing": domain.describe(schema, given, DOMAIN_SHARE, DELTA_SHARE / 2 if open_cats else 0.0) +
            "; the release and the mechanism compose sequentially"}
    prepare_private(model, df, plan)
    return plan


def prepare_private(model, df, plan: dict) -> None:
    """The schema and encoding of ``model`` from the noisy column histograms of ``plan``'s release instead of the
    rows (:mod:`~genforge.tables.data.private_domain`); declared rules only, none detected; no record of category
    pairs. Called by the privacy plan, before the networks are built; the noise is seeded by the fit's seed."""
    import numpy as np

    from genforge.tables.data.rule_detect import rules_for_training
    from genforge.tables.data.rule_repair import widen_sums
    from genforge.tables.data.schema import infer_schema
    from genforge.tables.data.transform import TableTransformer

    rel = next((r for r in plan["releases"] if r["what"] == domain.DOMAIN_RELEASE), None)
    if rel is None or getattr(model, "restored_encoding", False):  # a resumed run keeps the encoding it trained with
        return
    seed = model.transformer.seed
    meta = {**(model.metadata or {}), "detect_rules": False}
    drop = bool((df.attrs.get("spec") or {}).get("drop_violating"))
    _, real, model.rules = rules_for_training(df, meta, lambda d: infer_schema(d, meta), drop)
    sigma = rel["noise_multiplier"] * rel["sensitivity"]
    given = domain.given_fields(model.metadata, real)
    tau = domain.threshold(sigma, plan.get("delta_thresholding", 0.0), domain.open_categories(real, given))
    rng = np.random.default_rng([seed, 0x5EED])
    model.stand_in = domain.stand_in(domain.release(df, real, given, sigma, tau, rng), real, rng)
    model.schema = infer_schema(model.stand_in, domain.structure_metadata(model.metadata, real))
    model.transformer = TableTransformer(model.schema, **model.transformer_options(), seed=seed).fit(model.stand_in)
    widen_sums(model.rules, model.transformer.columns)
    model.pairs = None
    model.nets = {}


def private_batch(model, data, batch_size: int, gen: torch.Generator):
    """A CTGAN batch under DP: ``batch_size`` distinct rows drawn uniformly, each conditioned on its own category
    in one random column (and, for half the rows, on its others with probability ``p_extra``)."""
    cond = model.cond
    if not hasattr(cond, "freq"):
        noisy_frequencies(model, data)
    rows = torch.randperm(len(data.x), generator=gen)[:batch_size]
    x = data.x[rows]
    if not cond.blocks:
        return x, torch.zeros(len(x), 0)
    nb = len(cond.blocks)
    pick = torch.randint(nb, (len(x),), generator=gen)
    joint = torch.rand(len(x), 1, generator=gen) < 0.5
    mask = (torch.rand(len(x), nb, generator=gen) < model.config.p_extra) & joint
    mask[torch.arange(len(x)), pick] = True
    return x, cond.vectors(cond.cats_of(x), mask)


def noisy_frequencies(model, data) -> None:
    """Category frequencies per conditional block, counted on the stand-in table drawn from the released
    histograms (post-processing); a resumed run finds them in the generator's checkpointed buffer."""
    g = model.nets["G"]
    if g.cond_freq.abs().sum() > 0:  # restored from a checkpoint
        model.cond.set_freq(g.cond_freq.detach().cpu())
        return
    stand_in = torch.from_numpy(model.transformer.transform(model.stand_in))
    cats = model.cond.cats_of(stand_in)
    counts = torch.zeros_like(g.cond_freq.cpu())
    for b, (_, s, e, _) in enumerate(model.cond.blocks):
        counts[b, :e - s] = torch.bincount(cats[:, b], minlength=e - s).float() + 1e-3  # every category possible
    freq = counts / counts.sum(1, keepdim=True)
    model.cond.set_freq(freq)
    g.cond_freq.copy_(freq)
