"""`python -m services.submit [--config PATH]`."""

import sys

from mev_common.runtime import service_entrypoint

from services.submit.service import main

sys.exit(service_entrypoint("submit", main))
