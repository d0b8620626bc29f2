"""`python -m bench [...]`: the benchmark (bench/run.py); `python -m bench load [...]`: the load test;
`python -m bench share [...]`: two llama.cpp processes on one machine (bench/share.py);
`python -m bench concurrency [...]`: `calibrate collect --concurrency` through llama_cpp.server."""

import sys

from bench import concurrency, load, run, share

COMMANDS = {"load": load.main, "share": share.main, "concurrency": concurrency.main}

if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
sys.exit(run.main(sys.argv[1:]))
