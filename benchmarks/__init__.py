"""Benchmarks (`make bench`) and fault drills (`make drill`) on real parts: a fresh database,
the local SQS (moto), the Solapi sandbox over HTTP and `celery -A project worker` subprocesses.

Results: benchmarks/results/<name>.json; the recorded numbers: docs/benchmarks.md.
"""
