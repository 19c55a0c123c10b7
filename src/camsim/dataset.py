"""The loader under its first name: `from camsim.dataset import Dataset` (as the README and VisionSim-style
scripts write it) keeps working. The code lives in `camsim.loader`; this name is the same module object."""

import sys

from camsim import loader

sys.modules[__name__] = loader
