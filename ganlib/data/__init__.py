"""Datasets, all offline by default: 2-D/1-D toys, bundled MNIST, procedural shapes, batch sources.

Downloads (full MNIST, Fashion-MNIST, CIFAR-10) and image folders are opt-in through
``ganlib.data.download`` and ``ganlib.data.image_folder``.
"""
from ganlib.data.downloads import DOWNLOADABLE, download, image_folder
from ganlib.data.mnist import data_dir, mnist
from ganlib.data.shapes import PALETTE, SHAPE_NAMES, Shapes, render, sample_factors, shapes
from ganlib.data.sources import SamplerSource, TensorSource
from ganlib.data.toys import TOY_NAMES, GaussianMixture, SwissRoll, gaussian_1d, grid, ring, toy

__all__ = [
    "DOWNLOADABLE", "download", "image_folder", "data_dir", "mnist", "PALETTE", "SHAPE_NAMES", "Shapes",
    "render", "sample_factors", "shapes", "SamplerSource", "TensorSource", "TOY_NAMES", "GaussianMixture",
    "SwissRoll", "gaussian_1d", "grid", "ring", "toy",
]
