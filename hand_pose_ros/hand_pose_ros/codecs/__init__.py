"""Keypoint codecs: numpy-only encoders of training targets and decoders of network outputs.

One module per representation, each with ``encode`` (keypoints in input-crop pixels ->
targets) and ``decode`` (network output -> keypoints in input-crop pixels and a confidence
per keypoint in [0, 1]). Pixel centres are at integer coordinates; u is a column, v a row.
"""
