"""Where a Uniswap-V2-style pair lives: CREATE2 from its factory, sorted tokens and init code.

Why computed, not looked up: a pair address derived from a configured factory proves the
contract is that factory's pair (its code is fixed by the init code hash), so a route through
anything else (an attacker contract posing as a pair) is recognised without an RPC call.
"""

from __future__ import annotations

from eth_utils import keccak, to_checksum_address

# keccak256 of the Uniswap V2 pair creation code (npm @uniswap/v2-core 1.0.1 UniswapV2Pair.json
# `bytecode`, the value Router02's pairFor hard-codes); forks that change the pair code differ.
UNISWAP_V2_INIT_CODE_HASH = "0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"


def v2_pair_address(factory: str, token_x: str, token_y: str, init_code_hash: str | bytes) -> str:
    """Checksummed CREATE2 address of the factory's pair of the two tokens (either order)."""
    code_hash = (
        bytes.fromhex(init_code_hash.removeprefix("0x"))
        if isinstance(init_code_hash, str)
        else init_code_hash
    )
    t0, t1 = sorted((token_x, token_y), key=lambda a: int(a, 16))
    salt = keccak(bytes.fromhex(t0[2:]) + bytes.fromhex(t1[2:]))
    return str(
        to_checksum_address(keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + code_hash)[12:])
    )


# keccak256 of the Uniswap V3 pool creation code (npm @uniswap/v3-core 1.0.1 UniswapV3Pool.json
# `bytecode`; the POOL_INIT_CODE_HASH v3-periphery's PoolAddress hard-codes).
UNISWAP_V3_INIT_CODE_HASH = "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"


def v3_pool_address(
    factory: str, token_x: str, token_y: str, fee: int, init_code_hash: str | bytes
) -> str:
    """Checksummed CREATE2 address of the V3 factory's pool of two tokens at `fee` (pips)."""
    code_hash = (
        bytes.fromhex(init_code_hash.removeprefix("0x"))
        if isinstance(init_code_hash, str)
        else init_code_hash
    )
    t0, t1 = sorted((token_x, token_y), key=lambda a: int(a, 16))
    salt = keccak(bytes(12) + bytes.fromhex(t0[2:]) + bytes(12) + bytes.fromhex(t1[2:])
                  + fee.to_bytes(32, "big"))  # fmt: skip
    return str(
        to_checksum_address(keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + code_hash)[12:])
    )
