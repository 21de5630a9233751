"""Model families, one file each: toy (MLPs), and the image GANs added chapter by chapter."""
from ganlib.models.toy import MLPDiscriminator, MLPGenerator

__all__ = ["MLPDiscriminator", "MLPGenerator"]
