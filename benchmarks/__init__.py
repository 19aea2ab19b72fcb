"""atlab benchmarks: each ``benchmarks/bench_*.py`` module defines ``main()``.

Run them all in name order with ``python -m benchmarks`` (``make bench``), or some of them with
``python -m benchmarks bench_walk ...``.
"""
