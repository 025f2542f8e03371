import logging
import os
import sys

from tuner.cli import main

code = main()
if len(sys.argv) > 1 and sys.argv[1] == "worker":
    # A worker process has committed everything (trials, MLflow runs, best model) when main returns; skip
    # the interpreter's teardown of TensorFlow and friends (about 2 s on 2 cores) that its supervisor waits for.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
