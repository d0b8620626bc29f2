"""`python -m bench [...]`: the benchmark (bench/run.py); `python -m bench load [...]`: the load test;
`python -m bench share [...]`: two llama.cpp processes on one machine (bench/share.py);
`python -m bench concurrency [...]`: `calibrate collect --concurrency` through llama_cpp.server."""

import sys

if len(sys.argv) > 1 and sys.argv[1] == "load":
    from bench.load import main

    sys.exit(main(sys.argv[2:]))
if len(sys.argv) > 1 and sys.argv[1] == "share":
    from bench.share import main

    sys.exit(main(sys.argv[2:]))
if len(sys.argv) > 1 and sys.argv[1] == "concurrency":
    from bench.concurrency import main

    sys.exit(main(sys.argv[2:]))
from bench.run import main

sys.exit(main(sys.argv[1:]))
