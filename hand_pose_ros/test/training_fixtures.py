"""What the trainer tests share: a tiny residual_attention_3d and small synthetic crop sets."""

from __future__ import annotations

from pathlib import Path

# A residual_attention_3d small enough to train a few steps in a second.
TINY = {"widths": [8, 8, 8, 8], "stem_channels": 4, "fc_units": 16, "embedding": 8}


def write_depth_crops(folder: Path, count: int, seed: int) -> Path:
    """A synthetic depth-crop dataset of ``count`` crops (``hand-pose synth crops``)."""
    from hand_pose_ros.synth.config import SynthConfig
    from hand_pose_ros.synth.shards import write_dataset

    write_dataset(folder, kind="crops", count=count, seed=seed, config=SynthConfig(),
                  shard_size=count, crop_kinds=("depth",), workers=1)  # fmt: skip
    return folder
