"""Inside the model: first-layer filters, feature maps per stage with their receptive fields,
embeddings of a set of images, layer probes, and sanity checks of the CAM explanations.

Every view works from the model registry's stages (`ModelSpec.stages`: blocks in order, then
the tail), so custom CNNs and transfer backbones are opened the same way.
"""
