"""`python -m services.simulate [--config PATH]`."""

import sys

from mev_common.runtime import service_entrypoint

from services.simulate.service import main

sys.exit(service_entrypoint("simulate", main))
