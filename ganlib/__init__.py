"""ganlib: the tested PyTorch library behind the GAN Course notebooks.

Layers, lowest first (arrows point one way; tests/test_layering.py checks that models import nothing above them):
runtime, checkpoint, precision, distributed -> data -> losses / layers / pyramid -> progressive -> models ->
hooks -> train -> metrics -> experiments, reference -> viz / widgets -> cli.
"""
from ganlib.runtime import by_scale, describe, device, scale, seed_everything

__version__ = "0.1.0"
__all__ = ["by_scale", "describe", "device", "scale", "seed_everything", "__version__"]
