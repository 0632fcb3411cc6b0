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
/// @notice Runs a cycle of swaps atomically through pairs of allowlisted V2 factories and keeps
///         the profit only if it is at least `minProfit`; otherwise the whole transaction reverts.
///         The hot `owner` key trades and may sweep profit to the cold `beneficiary` only.
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
///
///      Safety (issue 11): before any token moves, every hop's pair must be the CREATE2 address
///      of an allowlisted factory for the hop's sorted tokens (`setFactory`), so a contract
///      posing as a pair is never called. In flash mode `execute` commits to the exact call in
///      flight (pair, both output amounts, hash of the callback data) and `uniswapV2Call` is
///      honoured once, only for that commitment, and forwards only a loan that arrived. So the
///      only funds a route can spend are hops[0].tokenIn's, which the profit check guards; even
///      an owner key (hot, maybe stolen) can move value out only by `sweep` to the beneficiary. The commitment lives in transient storage
///      (`Executor`, Cancun); `ExecutorStorageCommit` below is the same contract keeping it in
///      an ordinary storage slot for chains without TSTORE/TLOAD (contracts/Executor.sol and
///      contracts/ExecutorStorageCommit.sol, both compiled by deploy/devnet/compile.js; pick the
///      artifact at deploy time).
abstract contract ExecutorBase {
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

    /// @notice An allowlisted V2 factory and the keccak256 of its pair creation code.
    struct Factory {
        address factory;
        bytes32 initCodeHash;
    }

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The caller is neither the owner nor the beneficiary.
    error NotOwnerOrBeneficiary(address caller);
    /// @notice The caller is not the beneficiary.
    error NotBeneficiary(address caller);
    /// @notice The caller is not the pending owner.
    error NotPendingOwner(address caller);
    /// @notice The zero address where a real one is required.
    error ZeroAddress();
    /// @notice The hops do not form a cycle of two or more swaps, or a fee is out of range.
    error InvalidPath();
    /// @notice `pair` is not the CREATE2 pair of any allowlisted factory for its hop's tokens.
    error PairNotAllowed(address pair);
    /// @notice The cycle gained `profit` (negative: lost) units of hops[0].tokenIn, less than
    ///         `minProfit`: balance after minus balance before, or in flash mode the cycle's
    ///         output minus the amount to repay.
    error InsufficientProfit(int256 profit, uint256 minProfit);
    /// @notice `uniswapV2Call` does not match the flash swap in flight (wrong caller, sender,
    ///         amounts or data, already used, or none in flight).
    error UnexpectedCallback(address caller);
    /// @notice The flash swap's pair called back having sent only `received` of the `borrowed`
    ///         units of `token` it claims to lend.
    error LoanNotReceived(address token, uint256 received, uint256 borrowed);
    /// @notice The flash-swapped pair returned without calling `uniswapV2Call`.
    error CallbackMissing(address pair);
    /// @notice A token transfer failed or returned false.
    error TransferFailed(address token);
    /// @notice Sending ETH failed.
    error EthTransferFailed();

    /// @notice A cycle completed with `profit` units of `token` kept by this contract.
    event Arbitrage(address indexed token, uint256 amountIn, uint256 profit, uint256 hops);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event BeneficiaryChanged(address indexed previousBeneficiary, address indexed newBeneficiary);
    event FactorySet(address indexed factory, bytes32 initCodeHash, bool allowed);
    /// @notice `amount` of `token` (zero address: ETH) paid to the beneficiary.
    event Swept(address indexed token, address indexed beneficiary, uint256 amount);

    address public owner;
    address public pendingOwner;
    /// @notice The cold address profit may leave to; nothing else can receive funds.
    address public beneficiary;
    Factory[] private _factories;

    /// @param initialOwner       the hot key that trades
    /// @param initialBeneficiary the cold address profit is swept to
    /// @param initialFactories   the factories allowlisted from the start (`setFactory` later)
    constructor(address initialOwner, address initialBeneficiary, Factory[] memory initialFactories) {
        if (initialOwner == address(0) || initialBeneficiary == address(0)) revert ZeroAddress();
        owner = initialOwner;
        beneficiary = initialBeneficiary;
        emit OwnershipTransferred(address(0), initialOwner);
        emit BeneficiaryChanged(address(0), initialBeneficiary);
        for (uint256 i = 0; i < initialFactories.length; ++i) {
            Factory memory f = initialFactories[i];
            if (f.factory == address(0)) revert ZeroAddress();
            _factories.push(f);
            emit FactorySet(f.factory, f.initCodeHash, true);
        }
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier onlyOwnerOrBeneficiary() {
        if (msg.sender != owner && msg.sender != beneficiary) revert NotOwnerOrBeneficiary(msg.sender);
        _;
    }

    receive() external payable {}

    /// @dev The commitment to the flash swap in flight (zero: none). Transient or storage.
    function _commitment() internal view virtual returns (bytes32);

    function _setCommitment(bytes32 value) internal virtual;

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
            _requireAllowedPair(hops[i]);
        }
        address token = hops[0].tokenIn;
        uint256 balanceBefore = IERC20Minimal(token).balanceOf(address(this));

        if (flash) {
            uint256 firstOut = _amountOut(hops[0], amountIn);
            (uint256 out0, uint256 out1) = _outs(hops[0], firstOut);
            // What we hold of the loaned token now: the callback forwards only what arrived.
            uint256 held = IERC20Minimal(hops[0].tokenOut).balanceOf(address(this));
            bytes memory data = abi.encode(hops, amountIn, minProfit, held);
            address pair = hops[0].pair;
            _setCommitment(_commit(pair, out0, out1, data));
            // The pair sends hop 0's output here and calls uniswapV2Call on the recipient,
            // where the rest of the cycle runs and hop 0's input is repaid.
            IUniswapV2PairMinimal(pair).swap(out0, out1, address(this), data);
            if (_commitment() != bytes32(0)) revert CallbackMissing(pair);
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
        (Hop[] memory hops, uint256 amountIn, uint256 minProfit, uint256 held) =
            abi.decode(data, (Hop[], uint256, uint256, uint256));
        uint256 borrowed = amount0 + amount1;
        // A pair that calls back without lending (only reachable through a factory the owner
        // allowlisted, e.g. with a stolen hot key) must not make us pay the loan from our funds.
        uint256 received = IERC20Minimal(hops[1].tokenIn).balanceOf(address(this)) - held;
        if (received < borrowed) revert LoanNotReceived(hops[1].tokenIn, received, borrowed);
        _transfer(hops[1].tokenIn, hops[1].pair, borrowed);
        uint256 out = _runHops(hops, 1, borrowed);
        // Fail with the named error before the repayment would fail for lack of funds.
        if (out < amountIn || out - amountIn < minProfit) {
            revert InsufficientProfit(int256(out) - int256(amountIn), minProfit);
        }
        _transfer(hops[0].tokenIn, msg.sender, amountIn);
    }

    /// @notice Pay `amount` of `token` held here to the beneficiary (owner or beneficiary).
    function sweep(address token, uint256 amount) external onlyOwnerOrBeneficiary {
        address to = beneficiary;
        _transfer(token, to, amount);
        emit Swept(token, to, amount);
    }

    /// @notice Pay `amount` wei held here to the beneficiary (owner or beneficiary).
    function sweepEth(uint256 amount) external onlyOwnerOrBeneficiary {
        address to = beneficiary;
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert EthTransferFailed();
        emit Swept(address(0), to, amount);
    }

    /// @notice Move the beneficiary: only the beneficiary itself (the cold key) may.
    function setBeneficiary(address newBeneficiary) external {
        if (msg.sender != beneficiary) revert NotBeneficiary(msg.sender);
        if (newBeneficiary == address(0)) revert ZeroAddress();
        emit BeneficiaryChanged(beneficiary, newBeneficiary);
        beneficiary = newBeneficiary;
    }

    /// @notice Step 1 of handing the contract to a new key (zero cancels). The beneficiary may
    ///         call it too, so the cold key can take the contract back from a stolen hot key.
    function transferOwnership(address newOwner) external onlyOwnerOrBeneficiary {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    /// @notice Step 2: the pending owner takes over.
    function acceptOwnership() external {
        if (msg.sender != pendingOwner || msg.sender == address(0)) revert NotPendingOwner(msg.sender);
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    /// @notice Allow (or with `allowed` false, remove) `factory`, whose pairs are the CREATE2
    ///         addresses of `initCodeHash` (keccak256 of the pair's creation code).
    function setFactory(address factory, bytes32 initCodeHash, bool allowed) external onlyOwner {
        if (factory == address(0)) revert ZeroAddress();
        uint256 m = _factories.length;
        uint256 i = 0;
        while (i < m && _factories[i].factory != factory) ++i;
        if (allowed) {
            if (i < m) _factories[i].initCodeHash = initCodeHash;
            else _factories.push(Factory(factory, initCodeHash));
        } else if (i < m) {
            _factories[i] = _factories[m - 1];
            _factories.pop();
        }
        emit FactorySet(factory, initCodeHash, allowed);
    }

    /// @notice The allowlisted factories.
    function factories() external view returns (Factory[] memory) {
        return _factories;
    }

    /// @notice Whether `pair` is the pair of `tokenA`/`tokenB` of an allowlisted factory.
    function isAllowedPair(address pair, address tokenA, address tokenB) public view returns (bool) {
        if (tokenA == tokenB) return false;
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        bytes32 salt = keccak256(abi.encodePacked(t0, t1));
        uint256 m = _factories.length;
        for (uint256 i = 0; i < m; ++i) {
            Factory storage f = _factories[i];
            bytes32 h = keccak256(abi.encodePacked(hex"ff", f.factory, salt, f.initCodeHash));
            if (address(uint160(uint256(h))) == pair) return true;
        }
        return false;
    }

    function _requireAllowedPair(Hop calldata hop) private view {
        if (!isAllowedPair(hop.pair, hop.tokenIn, hop.tokenOut)) revert PairNotAllowed(hop.pair);
    }

    /// @dev What `uniswapV2Call` must see: the pair, its two output amounts and the data.
    function _commit(address pair, uint256 amount0, uint256 amount1, bytes memory data)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(pair, amount0, amount1, keccak256(data)));
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
            (uint256 out0, uint256 out1) = _outs(hops[i], out);
            IUniswapV2PairMinimal(hops[i].pair).swap(out0, out1, to, "");
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

    /// @dev (amount0Out, amount1Out) of a pair swap paying `amountOut` of hop.tokenOut.
    function _outs(Hop memory hop, uint256 amountOut) private pure returns (uint256, uint256) {
        return hop.tokenIn < hop.tokenOut ? (uint256(0), amountOut) : (amountOut, uint256(0));
    }

    /// @dev Transfer that also accepts tokens returning nothing (USDT-style).
    function _transfer(address token, address to, uint256 amount) private {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        if (!ok || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TransferFailed(token);
    }
}
