"""The model zoo: custom CNNs and torchvision transfer backbones, their registry, building and
freezing, and where ImageNet weights come from.
"""
