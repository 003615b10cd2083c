"""DP-SGD inside the one trainer: Opacus' per-example clipping and noise on a model's private networks.

A model that can train with differential privacy says which of its optimizers update networks whose
gradients see real examples (:class:`PrivateParts`, from ``model.private_parts()``): a VAE's encoder and
decoder, a GAN's discriminator (the generator sees the data only through it, so its updates are
post-processing). :func:`plan` turns the user's budget into a noise multiplier for the planned number of
steps before anything is written; :class:`PrivateTraining` then wraps those networks in Opacus'
``GradSampleModule`` (hooks that compute per-example gradients; the model keeps calling its own modules)
and their optimizers in ``DPOptimizer`` (clip each example's gradient to ``clip``, add
``N(0, (noise * clip)^2)`` to the sum), counts private steps for the accountant and stops training when the
planned steps, and so the budget, are spent.

Sampling: batches are drawn uniformly without replacement (a fresh permutation each epoch) and accounted
as Poisson sampling with ``q = batch / examples``, the approximation Opacus' own examples make without
Poisson sampling; the run records it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from genforge.core.config import TrainConfig
from genforge.core.errors import ConfigError
from genforge.core.privacy.budget import (check_rows, least_budget, noise_for_budget, parse_dp, release_noise,
                                          spent)

SAMPLING = "uniform batches without replacement, accounted as Poisson sampling at q = batch / examples"


@dataclass
class PrivateParts:
    """What DP-SGD protects in one model family.

    ``optimizers``: optimizer name -> the networks it updates (names in ``model.nets``, or modules); ``per_step(batch)``: per-example gradients an
    optimizer step of that batch sums (a GAN's discriminator sees the real and the fake images: ``2 * batch``);
    ``freeze``: parameters held at their initial value under DP (Opacus cannot take per-example gradients of
    a bare parameter, e.g. TVAE's output scale); ``weight_clip``: clamp the private networks' weights after each
    step (WGAN's Lipschitz constraint, data-independent, where a gradient penalty cannot be clipped per example);
    ``what``/``unit``/``preprocessing``: the report's words for what is private, per which example, and what
    looked at the data outside DP-SGD; ``releases``: statistics of the whole data the model publishes once with
    Gaussian noise, as ``(what, share of epsilon, L2 sensitivity)`` (a table's column histograms): the plan
    gives each its noise, the accountant composes it with the training steps, the model draws it
    (``plan["releases"]``); ``delta_share``: the share of delta spent outside the accountant (a release that
    keeps only the keys whose noisy count passes a threshold), the accountant certifying the rest. A model
    with releases draws them in ``model.prepare_private(data, plan)``, which :func:`plan` calls before the
    networks are built (a table model refits its encoding from its noisy column histograms there).
    """

    optimizers: dict[str, tuple[str, ...]]
    per_step: Callable[[int], int] = lambda batch: batch
    freeze: tuple[str, ...] = ()
    weight_clip: float | None = None
    what: str = ""
    unit: str = "row"
    preprocessing: str = "none: the data is scaled by fixed rules"
    releases: tuple[tuple[str, float, float], ...] = ()
    delta_share: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def dp_models() -> list[str]:
    """The registered models that train with ``--dp``."""
    from genforge.core.registry import available, get

    return [name for name, _ in available() if getattr(get(name), "supports_dp", False)]


def refuse(model_name: str, why: str = "") -> ConfigError:
    """The one-line error for ``--dp`` on a model that cannot take it, naming the ones that can."""
    reason = f" ({why})" if why else ""
    return ConfigError(f"--dp does not apply to '{model_name}'{reason}; the models that train with differential "
                       f"privacy: {', '.join(dp_models())}")


def plan(model, data, config: TrainConfig) -> TrainConfig:
    """``config`` with its ``dp`` budget resolved into a plan (noise multiplier, sampling rate, steps, what is
    private), or refused with one line; a run that already has a plan keeps it (a resume may not add steps
    beyond it: that budget is spent). Runs before the run directory exists."""
    dp = config.dp
    model.dp_plan = None
    if not dp:
        if getattr(model, "needs_dp", False):
            raise ConfigError(f"'{model.name}' is a differentially private mechanism and needs a budget: add --dp "
                              f"epsilon=E,delta=D (e.g. --dp epsilon=3,delta=1e-6)")
        return config
    if not getattr(model, "supports_dp", False):
        raise refuse(model.name)
    from genforge.core.train import distributed

    if distributed.world_size_planned() > 1:
        raise ConfigError("--dp trains in one process (noise is added once per step); drop --nproc or set it to 1")
    if dp.get("noise_multiplier") is not None or dp.get("mechanism"):  # a resumed run: noise chosen for its steps
        if config.steps is None or config.steps > dp["steps"]:
            raise ConfigError(f"this run's privacy budget (epsilon={dp['epsilon']:g}) was planned for {dp['steps']} "
                              f"steps and is spent there; give --steps {dp['steps']} or fewer, or train a new run "
                              f"with a bigger budget")
        model.dp_plan = dp
        _prepare(model, data, dp)  # the same seeded release again: a fresh model given a made plan, or a resume
        return config
    spec = parse_dp(dp)
    if config.steps is None:
        raise ConfigError("--dp needs a number of steps (--steps, or --epochs for tables): the noise is chosen so "
                          "that the budget lasts exactly that long")
    if hasattr(model, "private_plan"):  # a mechanism that is private by itself (MST, AIM): no DP-SGD
        resolved = model.private_plan(spec, data)
    else:
        parts = model.private_parts()
        n = len(model.batch_source(data))
        check_rows(spec, n, parts.unit + "s")
        from genforge.core.train.trainer import batch_sizes

        _, batch = batch_sizes(model, n, 1)
        q = batch / n
        accounted = spec.model_copy(update={"delta": spec.delta * (1 - parts.delta_share)})
        releases = [{"what": what, "share": share, "sensitivity": sens,
                     "noise_multiplier": release_noise(accounted, share)}
                    for what, share, sens in parts.releases]
        try:
            sigma = noise_for_budget(accounted, q, config.steps, [r["noise_multiplier"] for r in releases])
        except ConfigError:
            if not releases:
                raise
            least = least_budget(accounted, q, int(config.steps), [r["share"] for r in releases])
            raise ConfigError(f"--dp epsilon={spec.epsilon:g} is too small to train even one step at delta="
                              f"{spec.delta:g} with {', '.join(r['what'].split(' (')[0] for r in releases)} released "
                              f"too (the {spec.accountant} accountant cannot certify that little); the smallest "
                              f"budget that works is epsilon={least:g}") from None
        resolved = {**spec.model_dump(), "noise_multiplier": sigma, "sample_rate": q, "batch": batch, "examples": n,
                    "steps": int(config.steps), "unit": parts.unit, "private": parts.what,
                    "preprocessing": parts.preprocessing, "sampling": SAMPLING, **parts.extra,
                    **({"releases": releases} if releases else {}),
                    **({"delta_accounted": accounted.delta, "delta_thresholding": spec.delta - accounted.delta}
                       if parts.delta_share else {})}
        _prepare(model, data, resolved)
    out = config.model_copy()
    object.__setattr__(out, "dp", resolved)
    model.dp_plan = resolved  # what the model's batch source and releases follow (None: not private)
    return out


def _prepare(model, data, dp: dict) -> None:
    """Let a model draw the plan's one-off releases and rebuild what depends on them (see PrivateParts)."""
    if dp.get("releases") and hasattr(model, "prepare_private"):
        model.prepare_private(data, dp)


def _hooks_follow_freezing(net, gsm) -> None:
    """A network frozen with ``requires_grad_(False)`` (a GAN's discriminator during the generator's step) still
    passes gradients back to its input; Opacus' hooks must then be off, or they look for activations they never
    captured."""
    plain = net.requires_grad_

    def requires_grad_(requires_grad: bool = True):
        (gsm.enable_hooks if requires_grad else gsm.disable_hooks)()
        return plain(requires_grad)

    net.requires_grad_ = requires_grad_


class PrivateTraining:
    """Opacus attached to a built model for one :class:`~genforge.core.train.Trainer` run (see the module
    docstring). ``steps`` counts private optimizer steps (checkpointed); :meth:`close` removes the hooks."""

    def __init__(self, model, dp: dict[str, Any], batch: int):
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        self.model, self.dp, self.steps = model, dp, 0
        # Opacus' hooks on a first layer whose input needs no gradient: torch says so at every backward; expected
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        parts = model.private_parts()
        self.nets = [model.nets[n] if isinstance(n, str) else n for names in parts.optimizers.values() for n in names]
        for full in parts.freeze:
            net, _, param = full.partition(".")
            model.nets[net].get_parameter(param).requires_grad_(False)
        for net in self.nets:  # Opacus' backward hooks cannot follow in-place activations (same maths without)
            for m in net.modules():
                if getattr(m, "inplace", False) is True:
                    m.inplace = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.wrapped = [GradSampleModule(net) for net in self.nets]
        for net, gsm in zip(self.nets, self.wrapped):
            _hooks_follow_freezing(net, gsm)
        per_step = int(parts.per_step(batch))
        for name in parts.optimizers:
            dpo = DPOptimizer(model.optimizers[name], noise_multiplier=float(dp["noise_multiplier"]),
                              max_grad_norm=float(dp["clip"]), expected_batch_size=per_step)
            model.optimizers[name] = self._counting(dpo, parts.weight_clip)

    def _counting(self, dpo, weight_clip: float | None):
        step = dpo.step

        def counted(closure=None):
            out = step(closure)
            self.steps += 1
            if weight_clip is not None:
                import torch

                with torch.no_grad():
                    for net in self.nets:
                        for p in net.parameters():
                            p.clamp_(-weight_clip, weight_clip)
            return out

        dpo.step = counted
        return dpo

    def exhausted(self, private_per_step: int = 1) -> bool:
        """Whether the planned private steps (and so the budget) are used up."""
        return self.steps >= int(self.dp["steps"]) * private_per_step

    def summary(self) -> dict[str, Any]:
        """The guarantee so far, for ``summary.json``: the plan plus ``steps_done`` and ``epsilon_spent``."""
        return {**self.dp, "steps_done": self.steps, "epsilon_spent": round(spent(self.dp, self.steps), 4)}

    def close(self) -> None:
        """Remove Opacus' hooks (the networks are plain modules again)."""
        for net, w in zip(self.nets, self.wrapped):
            w._close()
            net.__dict__.pop("requires_grad_", None)
