// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

interface IERC20Minimal {
    function balanceOf(address account) external view returns (uint256);
}

interface IUniswapV2PairMinimal {
    function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);

    function swap(uint256 amount0Out, uint256 amount1Out, address to, bytes calldata data) external;
}

/// @title Executor: the bot's on-chain arm for cyclic arbitrage over Uniswap V2 pairs.
/// @notice Runs a cycle of swaps atomically through pairs of any V2 factory and keeps the
///         profit only if it is at least `minProfit`; otherwise the whole transaction reverts.
/// @dev Each hop's output goes straight into the next pair, so a cycle costs one token
///      transfer (in flash mode two: forwarding the borrowed output, repaying the loan), and
///      every output is computed here from the pair's reserves with the hop's own fee, so the
///      off-chain search and this contract agree to the wei.
///
///      Calldata of `execute(Hop[] hops, uint256 amountIn, uint256 minProfit, bool flash)`,
///      selector `0x8eb6f2bf`; every word is 32 bytes, offsets count from byte 4:
///        0x00  offset of `hops` (always 0x80)
///        0x20  amountIn   input of hop 0, in hops[0].tokenIn units
///        0x40  minProfit  least acceptable gain in hops[0].tokenIn units
///        0x60  flash      1 = borrow hop 0's output by a flash swap and repay at the end
///        0x80  n          number of hops (2 or more)
///        0xa0 + 0x80*i    hops[i] = (pair, tokenIn, tokenOut, feeBps), four words each
///      The path must be a cycle: hops[i].tokenOut == hops[i+1].tokenIn and
///      hops[n-1].tokenOut == hops[0].tokenIn. `feeBps` is the pair's swap fee in basis points
///      (30 for Uniswap V2: 9970/10000 is exactly the pair's 997/1000).
contract Executor {
    /// @notice One swap of the cycle.
    /// @param pair     the V2 pair to swap through
    /// @param tokenIn  token paid into the pair
    /// @param tokenOut token received from the pair (the pair's other token)
    /// @param feeBps   the pair's fee in basis points
    struct Hop {
        address pair;
        address tokenIn;
        address tokenOut;
        uint256 feeBps;
    }

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The hops do not form a cycle of two or more swaps, or a fee is out of range.
    error InvalidPath();
    /// @notice The cycle gained `profit` (negative: lost) units of hops[0].tokenIn, less than
    ///         `minProfit`: balance after minus balance before, or in flash mode the cycle's
    ///         output minus the amount to repay.
    error InsufficientProfit(int256 profit, uint256 minProfit);
    /// @notice `uniswapV2Call` came from anything but the pair being executed, or not for us.
    error UnexpectedCallback(address caller);
    /// @notice A token transfer failed or returned false.
    error TransferFailed(address token);
    /// @notice Sending ETH failed.
    error EthTransferFailed();

    /// @notice A cycle completed with `profit` units of `token` kept by this contract.
    event Arbitrage(address indexed token, uint256 amountIn, uint256 profit, uint256 hops);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    address public owner;

    /// @dev The pair whose flash swap is in flight; zero otherwise, so any callback outside
    ///      our own `execute` (a forged one) reverts. Transient: cleared at the end of the tx.
    address private transient activePair;

    constructor(address initialOwner) {
        owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    receive() external payable {}

    /// @notice Run the cycle `hops` with `amountIn` of hops[0].tokenIn and keep the gain.
    /// @param hops      the cycle, see the calldata layout above
    /// @param amountIn  input of the first hop
    /// @param minProfit revert with InsufficientProfit unless the gain is at least this
    /// @param flash     borrow the first hop by a flash swap instead of paying from our balance
    /// @return profit   the gain in hops[0].tokenIn units
    function execute(Hop[] calldata hops, uint256 amountIn, uint256 minProfit, bool flash)
        external
        onlyOwner
        returns (uint256 profit)
    {
        uint256 n = hops.length;
        if (n < 2 || hops[n - 1].tokenOut != hops[0].tokenIn) revert InvalidPath();
        for (uint256 i = 0; i < n; ++i) {
            if (hops[i].feeBps >= 10_000) revert InvalidPath();
            if (i + 1 < n && hops[i].tokenOut != hops[i + 1].tokenIn) revert InvalidPath();
        }
        address token = hops[0].tokenIn;
        uint256 balanceBefore = IERC20Minimal(token).balanceOf(address(this));

        if (flash) {
            uint256 firstOut = _amountOut(hops[0], amountIn);
            activePair = hops[0].pair;
            // The pair sends hop 0's output here and calls uniswapV2Call on the recipient,
            // where the rest of the cycle runs and hop 0's input is repaid.
            _swap(hops[0], firstOut, address(this), abi.encode(hops, amountIn, minProfit));
            activePair = address(0);
        } else {
            _transfer(token, hops[0].pair, amountIn);
            _runHops(hops, 0, amountIn);
        }

        uint256 balanceAfter = IERC20Minimal(token).balanceOf(address(this));
        if (balanceAfter < balanceBefore || balanceAfter - balanceBefore < minProfit) {
            revert InsufficientProfit(int256(balanceAfter) - int256(balanceBefore), minProfit);
        }
        profit = balanceAfter - balanceBefore;
        emit Arbitrage(token, amountIn, profit, n);
    }

    /// @notice Flash-swap callback: accepted only from the pair `execute` is flash-swapping.
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data)
        external
    {
        if (msg.sender != activePair || sender != address(this)) revert UnexpectedCallback(msg.sender);
        activePair = address(0);
        (Hop[] memory hops, uint256 amountIn, uint256 minProfit) =
            abi.decode(data, (Hop[], uint256, uint256));
        uint256 borrowed = amount0 + amount1;
        _transfer(hops[1].tokenIn, hops[1].pair, borrowed);
        uint256 out = _runHops(hops, 1, borrowed);
        // Fail with the named error before the repayment would fail for lack of funds.
        if (out < amountIn || out - amountIn < minProfit) {
            revert InsufficientProfit(int256(out) - int256(amountIn), minProfit);
        }
        _transfer(hops[0].tokenIn, msg.sender, amountIn);
    }

    /// @notice Send `amount` of `token` held here to `to`.
    function withdrawToken(address token, address to, uint256 amount) external onlyOwner {
        _transfer(token, to, amount);
    }

    /// @notice Send `amount` wei held here to `to`.
    function withdrawEth(address payable to, uint256 amount) external onlyOwner {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert EthTransferFailed();
    }

    /// @notice Hand the contract to a new key (key rotation).
    function transferOwnership(address newOwner) external onlyOwner {
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// @dev Swap hops[start..] given `amountIn` already sitting in hops[start].pair; each
    ///      output goes straight to the next pair, the last one to this contract.
    function _runHops(Hop[] memory hops, uint256 start, uint256 amountIn)
        private
        returns (uint256 amount)
    {
        uint256 n = hops.length;
        amount = amountIn;
        for (uint256 i = start; i < n; ++i) {
            uint256 out = _amountOut(hops[i], amount);
            address to = i + 1 < n ? hops[i + 1].pair : address(this);
            _swap(hops[i], out, to, "");
            amount = out;
        }
    }

    /// @dev Uniswap V2 getAmountOut with the hop's fee; V2 pairs order tokens by address.
    function _amountOut(Hop memory hop, uint256 amountIn) private view returns (uint256) {
        (uint256 r0, uint256 r1,) = IUniswapV2PairMinimal(hop.pair).getReserves();
        (uint256 reserveIn, uint256 reserveOut) = hop.tokenIn < hop.tokenOut ? (r0, r1) : (r1, r0);
        uint256 inWithFee = amountIn * (10_000 - hop.feeBps);
        return (inWithFee * reserveOut) / (reserveIn * 10_000 + inWithFee);
    }

    function _swap(Hop memory hop, uint256 amountOut, address to, bytes memory data) private {
        (uint256 out0, uint256 out1) = hop.tokenIn < hop.tokenOut ? (uint256(0), amountOut) : (amountOut, uint256(0));
        IUniswapV2PairMinimal(hop.pair).swap(out0, out1, to, data);
    }

    /// @dev Transfer that also accepts tokens returning nothing (USDT-style).
    function _transfer(address token, address to, uint256 amount) private {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TransferFailed(token);
    }
}
