"""``paperfeed bench``: search latency, recall, memory and embedding throughput at scale.

- :mod:`paperfeed.bench.corpus` makes the synthetic corpus (text and vectors),
- :mod:`paperfeed.bench.runner` builds (or reuses) it per size and drives the run,
- :mod:`paperfeed.bench.serve` measures a server of it in a fresh process,
- :mod:`paperfeed.bench.report` holds the typed results.
"""

from paperfeed.bench.report import BenchReport, SizeResult
from paperfeed.bench.runner import BenchConfig, parse_size, run_bench
from paperfeed.bench.serve import MODES

__all__ = ["MODES", "BenchConfig", "BenchReport", "SizeResult", "parse_size", "run_bench"]
