"""Image completion never changes a visible pixel, fills the masked ones, and refuses bad masks in one line
before writing anything."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genforge
from conftest import SMALL, make_tiny, one_error, run_cli, trained_run
from genforge.app.workflows import impute_to
from genforge.core.errors import GenforgeError
from genforge.images.imageio import save_npz


@pytest.mark.parametrize("name", ["vae", "cvae", "cgan", "ddpm", "flow"])
def test_completion_keeps_every_visible_pixel(name):
    data = make_tiny(48)
    model = genforge.create(name, **SMALL[name]).fit(data, steps=2, seed=0)
    x = data.x[:6]
    mask = (torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    out = model.complete(x, mask, seed=0)
    visible = mask.expand_as(x) == 0
    assert torch.equal(out[visible], x[visible])
    assert not torch.equal(out[~visible], x[~visible])
    assert torch.equal(model.complete(x, mask, seed=0), out)  # seeded


def test_impute_images_from_the_cli_keeps_the_given_uint8_pixels(tmp_path):
    run = trained_run(tmp_path, "--data", "digits", "--limit", "64", "--model", "vae", "--steps", "2",
                      "--set", "width=8")
    data = genforge.load_images("digits", limit=5)
    save_npz(tmp_path / "x.npz", data.x, data.y)
    mask = np.zeros((8, 8), np.uint8)
    mask[4:] = 1
    np.savez(tmp_path / "mask.npz", mask=mask)
    res = run_cli("impute", run, "--images", "x.npz", "--mask", "mask.npz", "-o", "out.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    given, done = np.load(tmp_path / "x.npz")["x"], np.load(tmp_path / "out.npz")["x"]
    assert np.array_equal(given[:, :4], done[:, :4]) and not np.array_equal(given[:, 4:], done[:, 4:])

    np.savez(tmp_path / "empty.npz", mask=np.zeros((8, 8)))
    one_error(run_cli("impute", run, "--images", "x.npz", "--mask", "empty.npz", "-o", "new.npz", cwd=tmp_path),
              "marks no pixel")
    np.savez(tmp_path / "odd.npz", mask=np.ones((5, 7, 8)))
    with pytest.raises(GenforgeError, match=r"has shape \(5, 7, 8\)"):
        impute_to(run, tmp_path / "x.npz", tmp_path / "new.npz", mask=tmp_path / "odd.npz")
    with pytest.raises(GenforgeError, match="needs --mask"):
        impute_to(run, tmp_path / "x.npz", tmp_path / "new.npz")
    assert not (tmp_path / "new.npz").exists()
