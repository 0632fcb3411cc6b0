// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

// Attack contracts for tests/security/test_executor_v3_attacks.py. Never deployed outside tests.

interface IV3CallbackTarget {
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data)
        external;
}

interface IERC20Transfer {
    function transfer(address to, uint256 amount) external returns (bool);
}

/// @title AttackerV3Pool: a contract posing as a Uniswap V3 pool.
/// @notice On `swap` it sends `out` of the output token (if set, and not in mode 2) to the
///         recipient, then calls the swapper back:
///         mode 0 (greedy) asks `extra` more than the exact input;
///         mode 1 (twice) asks the exact input, then calls back a second time;
///         mode 2 (unpaid) asks the exact input but never sent the output it reports;
///         mode 3 (relay) has the plain contract `relay` send the exact callback instead;
///         mode 4 (honest) asks the exact input.
///         `forge` sends a callback of the caller's choosing at any time.
contract AttackerV3Pool {
    uint8 public mode;
    uint256 public out;
    uint256 public extra;
    address public outToken;
    address public relay;

    function setUp(uint8 mode_, uint256 out_, uint256 extra_, address outToken_, address relay_)
        external
    {
        (mode, out, extra, outToken, relay) = (mode_, out_, extra_, outToken_, relay_);
    }

    function swap(address recipient, bool zeroForOne, int256 amountSpecified, uint160, bytes calldata data)
        external
        returns (int256 amount0, int256 amount1)
    {
        if (outToken != address(0) && mode != 2) IERC20Transfer(outToken).transfer(recipient, out);
        int256 owed = amountSpecified + (mode == 0 ? int256(extra) : int256(0));
        (amount0, amount1) = zeroForOne ? (owed, -int256(out)) : (-int256(out), owed);
        if (mode == 3) {
            AttackerV3Pool(relay).forge(msg.sender, amount0, amount1, data);
        } else {
            IV3CallbackTarget(msg.sender).uniswapV3SwapCallback(amount0, amount1, data);
            if (mode == 1) IV3CallbackTarget(msg.sender).uniswapV3SwapCallback(amount0, amount1, data);
        }
    }

    function forge(address target, int256 amount0, int256 amount1, bytes calldata data) external {
        IV3CallbackTarget(target).uniswapV3SwapCallback(amount0, amount1, data);
    }
}

/// @title AttackerV3Factory: deploys AttackerV3Pools at CREATE2 addresses as a V3 factory does
///        (salt keccak256(abi.encode(token0, token1, fee))), so an owner who allowlists it by
///        mistake lets its pools pass the pool check: the tests show the callback checks hold.
contract AttackerV3Factory {
    function createPool(address tokenA, address tokenB, uint24 fee) external returns (address pool) {
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        pool = address(new AttackerV3Pool{salt: keccak256(abi.encode(t0, t1, fee))}());
    }

    function initCodeHash() external pure returns (bytes32) {
        return keccak256(type(AttackerV3Pool).creationCode);
    }
}
