"""What the neural image generators (GANs, VAEs, diffusion models) share: shapes, labels, fit and sample."""

from __future__ import annotations

from typing import Any, ClassVar, Iterator, Sequence

import torch

from genforge.core.config import check_seed
from genforge.core.errors import ConfigError, DataError
from genforge.core.generator import NeuralGenerator
from genforge.images.models.layers import check_image_shape

LabelsLike = int | str | Sequence[int | str] | torch.Tensor | None

# Sampling chunks start at multiples of this many rows. CPU BLAS/oneDNN kernels round a row
# differently depending on where it falls in their row blocking (and thread split); aligned
# chunks give every row the same position, so samples are bit-identical for any batch size.
SAMPLE_ALIGN = 64
# Noise is drawn for this many samples at a time (a multiple of SAMPLE_ALIGN): memory stays bounded for
# any number of samples, and a sample's noise does not depend on how the output is written.
NOISE_BLOCK = 1024
# What looked at the images before a private (--dp) run: nothing (core.train.private records this line).
PIXELS = "none: pixels are scaled to [-1, 1] by a fixed rule and the image size is given"


class ImageGenerator(NeuralGenerator):
    """A neural generator of images ``(C, H, W)`` in [-1, 1], optionally class-conditional.

    Subclasses add ``noise(n, generator)`` (all randomness of a draw: a tensor, or a tuple of tensors,
    with one row per sample) and ``decode(z, y, **controls)`` (deterministic) to the
    :class:`NeuralGenerator` protocol. Families that sample in several steps name the controls
    :meth:`sample` takes in ``sampling_controls`` and resolve them in :meth:`sampling_options`.
    """

    modality: ClassVar[str] = "image"
    convolutional: ClassVar[bool] = True  # conv networks: square images of at least 8x8
    sampling_controls: ClassVar[frozenset[str]] = frozenset()  # of sample(): sampling_steps, guidance, sampler
    sample_batch: ClassVar[int] = 1000  # rows per network call when sampling (speed only: results do not depend on it)

    # -- shape / labels -----------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return int(getattr(self.config, "num_classes", 0) or 0)

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        s = self.config.image_shape
        return tuple(s) if s is not None else None

    def adopt_data(self, data, **_options) -> None:
        """Take the image shape and classes from ``data``, or check they match the model's."""
        shape = tuple(data.image_shape)
        if self.image_shape is None:
            self.config.image_shape = shape
        elif self.image_shape != shape:
            if self.convolutional:  # a configured shape the networks cannot take is the problem, not the data
                check_image_shape(self.image_shape)
            raise DataError(
                f"model '{self.name}' expects images of shape {self.image_shape} but the data has {shape}; "
                f"pass --size {self.image_shape[-1]} (and --channels {self.image_shape[0]}) or create a new model"
            )
        if self.conditional:
            if data.y is None:
                raise DataError(
                    f"model '{self.name}' is conditional and needs labelled data (class sub-folders, IDX labels, "
                    f"or 'y' in the .npz); use an unconditional model such as dcgan or vae for unlabelled data"
                )
            k = int(data.num_classes)
            if self.num_classes == 0:
                self.config.num_classes = k
                self.config.class_names = list(data.class_names) if data.class_names else None
            elif k > self.num_classes:
                raise DataError(f"the data has {k} classes but model '{self.name}' was built for {self.num_classes}")

    def resolve_labels(self, n: int, labels: LabelsLike) -> torch.Tensor | None:
        """Turn ``labels`` (None, one class, or one per sample; ints or class names) into a tensor."""
        if not self.conditional:
            if labels is not None:
                raise ConfigError(
                    f"model '{self.name}' is unconditional and cannot take a label; "
                    f"train a conditional model (cgan or cvae) to sample by class"
                )
            return None
        k = self.num_classes
        if labels is None:
            return torch.arange(n) % k
        names = list(getattr(self.config, "class_names", None) or [])
        items = [labels] if isinstance(labels, (int, str)) else list(labels.tolist() if torch.is_tensor(labels) else labels)
        out = []
        for item in items:
            if isinstance(item, str) and not item.lstrip("-").isdigit():
                if item not in names:
                    raise ConfigError(f"unknown label '{item}'; this model's classes are: {', '.join(names)}")
                item = names.index(item)
            item = int(item)
            if not 0 <= item < k:
                raise ConfigError(f"label {item} is out of range; this model knows classes 0..{k - 1}")
            out.append(item)
        t = torch.tensor(out, dtype=torch.long)
        if len(t) == 1:
            return t.expand(n).clone()
        if len(t) != n:
            raise ConfigError(f"got {len(t)} labels for {n} samples; pass one label or one per sample")
        return t

    def check_buildable(self) -> None:
        if self.image_shape is None:
            raise ConfigError(f"model '{self.name}' needs image_shape=(C, H, W) before it can be built; fit it on data")
        if self.conditional and self.num_classes < 1:
            raise ConfigError(f"model '{self.name}' needs num_classes >= 1; fit it on labelled data")
        if self.convolutional:
            check_image_shape(self.image_shape)

    def check_data_options(self, options) -> None:
        size, channels = options.get("size"), options.get("channels")
        if self.convolutional and size is not None:
            check_image_shape((channels or 1, size, size))

    def noise(self, n: int, generator: torch.Generator | None) -> torch.Tensor:  # pragma: no cover
        """The latent draws for ``n`` samples (from ``generator``, or the global random state if None)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:  # pragma: no cover
        """Latents ``z`` (and labels ``y``) -> images in about [-1, 1]; deterministic."""
        raise NotImplementedError

    def generate(self, n: int, y: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
        return self.decode(self.noise(n, generator), y, **self.sampling_options())

    def sampling_options(self, **given: Any) -> dict[str, Any]:
        """The controls :meth:`decode` gets, from those given to :meth:`sample` (None: not given).

        A generator that draws in one pass takes none: any given is refused, naming the models that take it.
        """
        given = {k: v for k, v in given.items() if v is not None}
        if not given:
            return {}
        from genforge.core.registry import available, get

        takers = [name for name, _ in available() if set(given) <= getattr(get(name), "sampling_controls", set())]
        names = ", ".join(f"{k} (--{k.replace('_', '-')})" for k in given)
        raise ConfigError(f"model '{self.name}' draws each image in one pass and takes no {names}; "
                          f"the models that do: {', '.join(takers) or 'none'}")

    # -- public API --------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, labels: LabelsLike = None, seed: int | None = None,
               batch_size: int | None = None, sampling_steps: int | None = None, guidance: float | None = None,
               sampler: str | None = None) -> torch.Tensor:
        """Draw ``n`` images as a float tensor ``(n, C, H, W)`` in [-1, 1].

        ``labels``: for conditional models, one class (int or name) or one per sample
        (default: classes in turn). ``seed`` makes the draw reproducible without touching
        the global random state. ``batch_size`` (default: the family's ``sample_batch``) only sets
        memory and speed: the result is the same for any ``batch_size`` (see :meth:`sample_chunks`).
        ``sampling_steps``, ``guidance`` and ``sampler`` steer the models that sample in several
        steps (ddpm, flow; None: the run's defaults); the others refuse them. The whole result is
        held in memory, so a request over the memory limit is refused: stream it with
        :meth:`sample_chunks` (``genforge sample`` does).
        """
        from genforge.core.limits import check_memory

        self.check_count(n)
        c, h, w = self.image_shape
        check_memory(n * c * h * w * 4, f"holding {n:,} images of {c}x{h}x{w} as floats",
                     "sample fewer at once, or stream them with sample_chunks() or 'genforge sample', which writes "
                     "in chunks")
        return torch.cat(list(self.sample_chunks(n, labels=labels, seed=seed, batch_size=batch_size,
                                                 sampling_steps=sampling_steps, guidance=guidance, sampler=sampler)))

    @torch.no_grad()
    def sample_chunks(self, n: int, *, labels: LabelsLike = None, seed: int | None = None,
                      batch_size: int | None = None, sampling_steps: int | None = None,
                      guidance: float | None = None, sampler: str | None = None) -> Iterator[torch.Tensor]:
        """Draw ``n`` images chunk by chunk (float ``(m, C, H, W)`` in [-1, 1], at most ``NOISE_BLOCK`` each),
        so that any number of samples can be written with bounded memory.

        The noise is drawn in fixed blocks of ``NOISE_BLOCK`` samples, one after the other from one
        generator, and the networks run on chunks that start at multiples of ``SAMPLE_ALIGN`` rows
        (``batch_size`` is rounded up to one), so that each row meets the same BLAS kernel blocking:
        sample ``i`` is the same whatever ``batch_size`` and however the chunks are consumed.
        """
        self.check_count(n)
        check_seed(seed)
        controls = self.sampling_options(sampling_steps=sampling_steps, guidance=guidance, sampler=sampler)
        y = self.resolve_labels(n, labels)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        self.prepare_sampling()
        self.eval()
        step = min(-(-max(int(batch_size or self.sample_batch), 1) // SAMPLE_ALIGN) * SAMPLE_ALIGN, NOISE_BLOCK)
        for block in range(0, n, NOISE_BLOCK):
            m = min(NOISE_BLOCK, n - block)
            z = self.noise(m, gen)
            chunks = []
            for start in range(0, m, step):
                yb = y[block + start:block + start + step].to(self.device) if y is not None else None
                zb = _rows(z, start, start + step, self.device)
                chunks.append(self.decode(zb, yb, **controls).float().clamp_(-1, 1).cpu())
            yield torch.cat(chunks)


    # -- completion ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def complete(self, x: torch.Tensor, mask: torch.Tensor, *, labels: LabelsLike = None, seed: int | None = None,
                 batch_size: int = 256) -> torch.Tensor:
        """Fill the pixels of ``x`` (``(n, C, H, W)`` in [-1, 1]) where ``mask`` (same shape, or ``(n, 1, H, W)``)
        is 1, conditioned on the others, which are returned exactly as given (see :mod:`.completion`).

        ``labels``: one class or one per image for conditional models (default: unknown; the family decides
        how to do without). ``seed`` makes it reproducible."""
        self.check_fitted()
        check_seed(seed)
        x = x.float()
        mask = (mask > 0).to(x.dtype).expand_as(x)
        y = self.resolve_labels(len(x), labels) if (self.conditional and labels is not None) else None
        gen = torch.Generator().manual_seed(seed if seed is not None else 0)
        self.prepare_sampling()
        self.eval()
        out = []
        for s in range(0, len(x), batch_size):
            xb, mb = x[s:s + batch_size].to(self.device), mask[s:s + batch_size].to(self.device)
            yb = y[s:s + batch_size].to(self.device) if y is not None else None
            filled = self.fill(xb, mb, yb, gen).float().clamp(-1, 1)
            out.append(torch.where(mb > 0, filled, xb).cpu())
        return torch.cat(out)

    def fill(self, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor | None, gen: torch.Generator) -> torch.Tensor:
        """Images whose masked pixels the model invented given the visible ones (one-pass families: a latent
        search, :func:`~genforge.images.models.completion.latent_fill`)."""
        from genforge.images.models.completion import latent_fill

        return latent_fill(self, x, mask, y, gen)

    def initial_latent(self, x, mask, y, gen) -> torch.Tensor:
        """Where the latent search starts: a draw from the prior (VAEs start from their encoder)."""
        z = self.noise(len(x), gen)
        if isinstance(z, tuple):
            raise ConfigError(f"model '{self.name}' has no single latent to search; it cannot complete images")
        return z.to(x.device)


def _rows(z: torch.Tensor | tuple, start: int, stop: int, device) -> torch.Tensor | tuple:
    """Rows ``start:stop`` of a noise draw (a tensor or a tuple of tensors), on ``device``."""
    if isinstance(z, tuple):
        return tuple(_rows(part, start, stop, device) for part in z)
    return z[start:stop].to(device)
