"""`python -m service --host H --port P`: run the service under uvicorn."""

import sys

from service.cli import main

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]])
