"""``harness bench``: workloads, timing and statistics.

* :mod:`.stats` -- pure statistics (summary with distribution-free median interval, outlier
  flags, bootstrap ratio, linear fit); the report imports them.
* :mod:`.records` -- the sample record (``samples.jsonl``) and the hyperfine-format export.
* :mod:`.lifecycle`, :mod:`.io`, :mod:`.scale` -- the three suites.
* :mod:`.runner` -- one run: output folder, work folder, journal, progress, cleanup.
* ``iobench.c`` -- the static in-container I/O workload program (built by :mod:`._build`).

Only :mod:`.stats` and :mod:`.records` are imported here (they need numpy/scipy, not root).
"""

from . import records, stats
from .records import SCHEMA, SampleWriter, read_samples, sample

__all__ = ["SCHEMA", "SampleWriter", "read_samples", "records", "sample", "stats"]
