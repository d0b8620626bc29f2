"""`python -m bench [...]`: the benchmark (bench/run.py); `python -m bench load [...]`: the load test."""

import sys

if len(sys.argv) > 1 and sys.argv[1] == "load":
    from bench.load import main

    sys.exit(main(sys.argv[2:]))
from bench.run import main

sys.exit(main(sys.argv[1:]))
