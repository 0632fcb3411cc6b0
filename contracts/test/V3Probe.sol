// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

// Test helper for tests/integration/test_v3_math_vs_pool.py. Never deployed outside tests.

interface IV3PoolLike {
    function token0() external view returns (address);

    function token1() external view returns (address);

    function liquidity() external view returns (uint128);

    function slot0()
        external
        view
        returns (uint160 sqrtPriceX96, int24 tick, uint16, uint16, uint16, uint8, bool);

    function mint(address recipient, int24 tickLower, int24 tickUpper, uint128 amount, bytes calldata data)
        external
        returns (uint256 amount0, uint256 amount1);

    function swap(
        address recipient,
        bool zeroForOne,
        int256 amountSpecified,
        uint160 sqrtPriceLimitX96,
        bytes calldata data
    ) external returns (int256 amount0, int256 amount1);
}

interface IERC20Min {
    function transfer(address to, uint256 amount) external returns (bool);
}

/// @title V3Probe: mints liquidity into a pool from its own balance, and asks a pool what a swap
///        would do without doing it.
/// @notice `probe` runs the real pool.swap and reverts inside the swap callback with the amounts
///         and the pool's state after the swap (slot0 and liquidity are written before the
///         callback), then returns what the revert carried: the pool's own answer, nothing kept.
contract V3Probe {
    struct Outcome {
        int256 amount0;
        int256 amount1;
        uint160 sqrtPriceX96;
        int24 tick;
        uint128 liquidity;
    }

    function mint(address pool, int24 tickLower, int24 tickUpper, uint128 amount) external {
        IV3PoolLike(pool).mint(address(this), tickLower, tickUpper, amount, "");
    }

    function uniswapV3MintCallback(uint256 amount0, uint256 amount1, bytes calldata) external {
        if (amount0 > 0) IERC20Min(IV3PoolLike(msg.sender).token0()).transfer(msg.sender, amount0);
        if (amount1 > 0) IERC20Min(IV3PoolLike(msg.sender).token1()).transfer(msg.sender, amount1);
    }

    function probe(address pool, bool zeroForOne, int256 amountSpecified, uint160 sqrtPriceLimitX96)
        public
        returns (Outcome memory)
    {
        try IV3PoolLike(pool).swap(address(this), zeroForOne, amountSpecified, sqrtPriceLimitX96, "") {
            revert("V3Probe: swap returned");
        } catch (bytes memory reason) {
            if (reason.length != 160) {
                assembly {
                    revert(add(reason, 32), mload(reason))
                }
            }
            return abi.decode(reason, (Outcome));
        }
    }

    /// Many probes in one call (each one's swap is undone by its own revert).
    function probeMany(
        address[] calldata pools,
        bool[] calldata zeroForOne,
        int256[] calldata amounts,
        uint160[] calldata limits
    ) external returns (Outcome[] memory out) {
        out = new Outcome[](pools.length);
        for (uint256 i = 0; i < pools.length; i++) {
            out[i] = probe(pools[i], zeroForOne[i], amounts[i], limits[i]);
        }
    }

    function uniswapV3SwapCallback(int256 amount0, int256 amount1, bytes calldata) external view {
        IV3PoolLike pool = IV3PoolLike(msg.sender);
        (uint160 sqrtPriceX96, int24 tick,,,,,) = pool.slot0();
        bytes memory encoded = abi.encode(amount0, amount1, sqrtPriceX96, tick, pool.liquidity());
        assembly {
            revert(add(encoded, 32), mload(encoded))
        }
    }
}
