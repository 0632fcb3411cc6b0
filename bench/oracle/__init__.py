"""bench's own answer to "what arbitrage was on offer after each block" (scenario 6).

Why a separate code path: a benchmark that measured detect against detect's own search would
only prove the search agrees with itself. Nothing here imports detect or mev_common.amm.
"""
