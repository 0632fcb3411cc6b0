"""`python -m services.ingest [--config PATH]`."""

import sys

from mev_common.runtime import service_entrypoint

from services.ingest.service import main

sys.exit(service_entrypoint("ingest", main))
