"""Sub-commands of ``hand-pose`` that have grown past a few lines, one module each."""
