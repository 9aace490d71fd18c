"""Speed benchmarks: ``python -m bench`` runs every ``bench_*.py`` module's ``main()``;
``python -m bench metrics pipeline`` runs only those. Results go to ``bench/results/<name>.json``."""
