"""The synthetic hand world: articulated hands rendered as aligned RGB-D with exact ground truth.

No hand dataset can be downloaded where this project is built, so training, the demo, the
tracker tests and the benchmarks all run on hands made here. Every distribution parameter
lives in one config object (``config.SynthConfig``); the same seed gives the same bytes.
"""
