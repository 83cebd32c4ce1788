"""``forecasting bench vision``: Bayesian ResNet/ViT calibration benchmark and the paper-scale GPU check."""
