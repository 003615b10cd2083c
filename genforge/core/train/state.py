"""Training state <-> (tensors, JSON) without pickle.

Optimizer and RNG states are flattened into named tensors (stored in safetensors)
plus a JSON-able dict (stored as safetensors metadata), and restored from them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def modules_to_tensors(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """``{"G.net.0.weight": ..., ...}`` from named modules' state dicts."""
    out = {}
    for name, mod in modules.items():
        for k, v in mod.state_dict().items():
            out[f"{name}.{k}"] = v
    return out


def tensors_to_modules(tensors: dict[str, torch.Tensor], modules: dict[str, nn.Module]) -> None:
    """Load named modules' weights from :func:`modules_to_tensors` output (strict)."""
    for name, mod in modules.items():
        prefix = name + "."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        mod.load_state_dict(sd, strict=True)


def optimizer_to_tensors(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten an optimizer's state: tensors keyed ``optim.NAME.PID.KEY`` and JSON meta."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim.{name}.{pid}.{key}"] = val
            else:
                scalars[f"{pid}.{key}"] = val
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def tensors_to_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore an optimizer from :func:`optimizer_to_tensors` output."""
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for k, v in tensors.items():
        if k.startswith(prefix):
            pid, key = k[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[key] = v
    for k, v in meta.get("scalars", {}).items():
        pid, key = k.split(".", 1)
        state.setdefault(int(pid), {})[key] = v
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})
