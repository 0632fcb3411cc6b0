// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

interface IERC20Minimal {
    function balanceOf(address account) external view returns (uint256);
}

interface IUniswapV2PairMinimal {
    function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);

    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

interface IUniswapV3PoolMinimal {
    function swap(
        address recipient,
        bool zeroForOne,
        int256 amountSpecified,
        uint160 sqrtPriceLimitX96,
        bytes calldata data
    ) external returns (int256 amount0, int256 amount1);
}

/// @title PoolSwaps: how the Executor swaps through Uniswap V2 pairs and V3 pools.
/// @notice The hop struct, the swap loop, and both pool callbacks with their commitment checks
///         (the calldata layout and the safety rules are in ExecutorBase's NatSpec). No state
///         of its own: ExecutorBase's storage layout is unchanged by the split.
abstract contract PoolSwaps {
    /// @notice One swap of the cycle.
    /// @param pair     the V2 pair to swap through
    /// @param tokenIn  token paid into the pair
    /// @param tokenOut token received from the pair (the pair's other token)
    /// @param feeBps   the pair's fee in basis points, or V3_HOP | the V3 pool's fee in pips
    struct Hop {
        address pair;
        address tokenIn;
        address tokenOut;
        uint256 feeBps;
    }

    /// @notice The fee word flag of a Uniswap V3 hop (calldata layout above).
    uint256 public constant V3_HOP = 1 << 24;
    uint160 internal constant MIN_SQRT_RATIO_PLUS_ONE = 4295128740;
    uint160 internal constant MAX_SQRT_RATIO_MINUS_ONE = 1461446703485210103287273052203988822378723970341;
    /// @dev Domain tag of a V3 swap commitment, so it can never satisfy `uniswapV2Call`.
    bytes32 private constant V3_TAG = keccak256("uniswapV3SwapCallback");

    /// @notice The hops do not form a cycle of two or more swaps, or a fee is out of range.
    error InvalidPath();
    /// @notice The cycle gained `profit` (negative: lost) units of hops[0].tokenIn, less than
    ///         `minProfit`: balance after minus balance before, or in flash mode the cycle's
    ///         output minus the amount to repay.
    error InsufficientProfit(int256 profit, uint256 minProfit);
    /// @notice `uniswapV2Call` does not match the flash swap in flight (wrong caller, sender,
    ///         amounts or data, already used, or none in flight).
    error UnexpectedCallback(address caller);
    /// @notice A V3 pool called back not for the swap in flight (wrong caller, amount owed or
    ///         data, already used, or none in flight).
    error UnexpectedV3Callback(address caller);
    /// @notice The flash swap's pair called back having sent only `received` of the `borrowed`
    ///         units of `token` it claims to lend.
    error LoanNotReceived(address token, uint256 received, uint256 borrowed);
    /// @notice The flash-swapped pair returned without calling `uniswapV2Call`.
    error CallbackMissing(address pair);
    /// @notice A token transfer failed or returned false.
    error TransferFailed(address token);

    /// @dev The commitment to the flash swap in flight (zero: none). Transient or storage.
    function _commitment() internal view virtual returns (bytes32);

    function _setCommitment(bytes32 value) internal virtual;

    /// @dev Borrow hop 0's output by a flash swap; the callback runs the rest and repays.
    function _flashSwap(Hop[] calldata hops, uint256 amountIn, uint256 minProfit) internal {
        // What we hold of the loaned token now: the callback forwards only what arrived.
        uint256 held = IERC20Minimal(hops[0].tokenOut).balanceOf(address(this));
        bytes memory data = abi.encode(hops, amountIn, minProfit, held);
        Hop memory first = hops[0];
        if (_isV3(first)) {
            // The pool sends hop 0's output here, then asks for amountIn in
            // uniswapV3SwapCallback, where the rest of the cycle runs first.
            _swapV3(first, amountIn, address(this), data);
            return;
        }
        (uint256 out0, uint256 out1) = _outs(first, _amountOut(first, amountIn));
        _setCommitment(_commit(first.pair, out0, out1, data));
        // The pair sends hop 0's output here and calls uniswapV2Call on the recipient, where
        // the rest of the cycle runs and hop 0's input is repaid.
        IUniswapV2PairMinimal(first.pair).swap(out0, out1, address(this), data);
        if (_commitment() != bytes32(0)) revert CallbackMissing(first.pair);
    }

    /// @notice Flash-swap callback: honoured once, only for the exact swap `execute` committed to
    ///         (this pair, for us, these amounts, this data).
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data)
        external
    {
        bytes32 expected = _commitment();
        if (
            expected == bytes32(0) || sender != address(this)
                || _commit(msg.sender, amount0, amount1, data) != expected
        ) revert UnexpectedCallback(msg.sender);
        _setCommitment(bytes32(0));
        _finishFlash(data, amount0 + amount1);
    }

    /// @notice V3 swap callback: honoured once, only for the swap in flight (this pool, owed
    ///         exactly the committed input, this data); pays that input to the pool, nothing else.
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data)
        external
    {
        bytes32 expected = _commitment();
        // the positive delta is what the pool asks; the commitment names the amount and, by the
        // data (tokenIn, or the flash route), the token
        int256 owed = amount0Delta > 0 ? amount0Delta : amount1Delta;
        if (expected == bytes32(0) || owed <= 0 || _commitV3(msg.sender, uint256(owed), data) != expected) {
            revert UnexpectedV3Callback(msg.sender);
        }
        _setCommitment(bytes32(0));
        if (data.length == 32) {
            _transfer(abi.decode(data, (address)), msg.sender, uint256(owed));
        } else {
            // flash with a V3 first hop: what it sent us is the other delta
            _finishFlash(data, uint256(-(amount0Delta > 0 ? amount1Delta : amount0Delta)));
        }
    }

    /// @dev Inside a flash callback: check the loan of hop 0's output arrived, run hops 1..n-1
    ///      with it, then pay hop 0's input to its pool (the caller) if the cycle gained enough.
    function _finishFlash(bytes calldata data, uint256 borrowed) internal {
        (Hop[] memory hops, uint256 amountIn, uint256 minProfit, uint256 held) =
            abi.decode(data, (Hop[], uint256, uint256, uint256));
        // A pool that calls back without lending (only reachable through a factory the owner
        // allowlisted, e.g. with a stolen hot key) must not make us pay the loan from our funds.
        uint256 received = IERC20Minimal(hops[1].tokenIn).balanceOf(address(this)) - held;
        if (received < borrowed) revert LoanNotReceived(hops[1].tokenIn, received, borrowed);
        uint256 out = _runHops(hops, 1, borrowed);
        // Fail with the named error before the repayment would fail for lack of funds.
        if (out < amountIn || out - amountIn < minProfit) {
            revert InsufficientProfit(int256(out) - int256(amountIn), minProfit);
        }
        _transfer(hops[0].tokenIn, msg.sender, amountIn);
    }


    function _isV3(Hop memory hop) internal pure returns (bool) {
        return hop.feeBps >= V3_HOP;
    }

    /// @dev What `uniswapV2Call` must see: the pair, its two output amounts and the data.
    function _commit(address pair, uint256 amount0, uint256 amount1, bytes memory data)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(pair, amount0, amount1, keccak256(data)));
    }

    /// @dev What `uniswapV3SwapCallback` must see: the pool, the input it asks, the data.
    function _commitV3(address pool, uint256 owed, bytes memory data) internal pure returns (bytes32) {
        return keccak256(abi.encode(V3_TAG, pool, owed, keccak256(data)));
    }

    /// @dev Swap hops[start..] with `amountIn` of hops[start].tokenIn held here. A V2 pair takes
    ///      its input before the swap, a V3 pool in the callback: each output goes straight into
    ///      the next pool when that is a V2 pair, else (and the last one) to this contract.
    function _runHops(Hop[] memory hops, uint256 start, uint256 amountIn)
        internal
        returns (uint256 amount)
    {
        uint256 n = hops.length;
        amount = amountIn;
        for (uint256 i = start; i < n; ++i) {
            Hop memory hop = hops[i];
            address to = i + 1 < n && !_isV3(hops[i + 1]) ? hops[i + 1].pair : address(this);
            if (_isV3(hop)) {
                amount = _swapV3(hop, amount, to, abi.encode(hop.tokenIn));
            } else {
                if (i == start) _transfer(hop.tokenIn, hop.pair, amount);
                uint256 out = _amountOut(hop, amount);
                (uint256 out0, uint256 out1) = _outs(hop, out);
                IUniswapV2PairMinimal(hop.pair).swap(out0, out1, to, "");
                amount = out;
            }
        }
    }

    /// @dev Exact-input V3 swap of `amountIn` paying its output to `to`; `data` is tokenIn
    ///      (32 bytes: the callback pays it) or the flash route. Returns the output. A pool paying
    ///      us must really have paid (checked here; a flash route checks in `_finishFlash`).
    function _swapV3(Hop memory hop, uint256 amountIn, address to, bytes memory data)
        internal
        returns (uint256 out)
    {
        if (amountIn == 0 || amountIn > uint256(type(int256).max)) revert InvalidPath();
        bool zeroForOne = hop.tokenIn < hop.tokenOut;
        bool check = to == address(this) && data.length == 32;
        uint256 before = check ? IERC20Minimal(hop.tokenOut).balanceOf(address(this)) : 0;
        _setCommitment(_commitV3(hop.pair, amountIn, data));
        (int256 a0, int256 a1) = IUniswapV3PoolMinimal(hop.pair).swap(
            to, zeroForOne, int256(amountIn), zeroForOne ? MIN_SQRT_RATIO_PLUS_ONE : MAX_SQRT_RATIO_MINUS_ONE, data
        );
        if (_commitment() != bytes32(0)) revert CallbackMissing(hop.pair);
        int256 paid = zeroForOne ? a1 : a0; // negative: what the pool sent
        out = paid < 0 ? uint256(-paid) : 0;
        if (check) {
            uint256 received = IERC20Minimal(hop.tokenOut).balanceOf(address(this)) - before;
            if (received < out) revert LoanNotReceived(hop.tokenOut, received, out);
        }
    }

    /// @dev Uniswap V2 getAmountOut with the hop's fee; V2 pairs order tokens by address.
    function _amountOut(Hop memory hop, uint256 amountIn) internal view returns (uint256) {
        (uint256 r0, uint256 r1,) = IUniswapV2PairMinimal(hop.pair).getReserves();
        (uint256 reserveIn, uint256 reserveOut) = hop.tokenIn < hop.tokenOut ? (r0, r1) : (r1, r0);
        uint256 inWithFee = amountIn * (10_000 - hop.feeBps);
        return (inWithFee * reserveOut) / (reserveIn * 10_000 + inWithFee);
    }

    /// @dev (amount0Out, amount1Out) of a pair swap paying `amountOut` of hop.tokenOut.
    function _outs(Hop memory hop, uint256 amountOut) internal pure returns (uint256, uint256) {
        return hop.tokenIn < hop.tokenOut ? (uint256(0), amountOut) : (amountOut, uint256(0));
    }

    /// @dev Transfer that also accepts tokens returning nothing (USDT-style).
    function _transfer(address token, address to, uint256 amount) internal {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TransferFailed(token);
    }
}
