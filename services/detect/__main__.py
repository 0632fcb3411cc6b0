"""`python -m services.detect [--config PATH]`."""

import sys

from mev_common.runtime import service_entrypoint

from services.detect.service import main

sys.exit(service_entrypoint("detect", main))
