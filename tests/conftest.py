import sys
from pathlib import Path

# The demo's helpers (token minting, mock servers, Envoy launcher) serve the tests too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "demo"))
