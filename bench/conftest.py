"""pytest-benchmark over the registry in fastiou.bench (the one `fastiou bench` uses).

pytest bench --benchmark-only                 # time everything (slow)
pytest bench --benchmark-disable -m quick     # smoke: every quick case runs once (CI)
"""
