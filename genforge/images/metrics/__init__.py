"""Evaluation: fidelity, diversity, memorisation and usefulness metrics, and the HTML report.

One entry point per modality; for images :func:`evaluate_images`.
"""

from genforge.images.metrics.features import Extractor, domain_extractor
from genforge.images.metrics.fidelity import frechet_distance, inception_score, kernel_inception_distance, prdc
from genforge.images.metrics.evaluate import evaluate_images


def inception_extractor(weights_path) -> Extractor:
    """Standard FID features (Inception-v3 pool3, 2048-d) from a local pytorch-fid weights file."""
    from genforge.images.metrics.inception import load_inception

    net = load_inception(weights_path)
    return Extractor(net, "Inception-v3 pool3 (2048-d, FID weights)", f"weights from {weights_path}", False,
                     str(weights_path))


__all__ = ["Extractor", "domain_extractor", "evaluate_images", "frechet_distance", "inception_extractor",
           "inception_score", "kernel_inception_distance", "prdc"]
