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

/// @title Executor: the bot's on-chain arm for cyclic arbitrage over Uniswap V2 and V3 pools.
/// @notice Runs a cycle of swaps atomically through pools of allowlisted factories and keeps
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
///      The fee word also says the hop's kind (issue 13): below 10,000 it is a V2 pair's fee in
///      bps; `V3_HOP | feePips` (V3_HOP = 0x1000000 = 2**24, feePips < 1,000,000) is a Uniswap V3
///      pool of that fee tier (e.g. 0x1000bb8: the 3000-pip tier). Anything else is InvalidPath.
///      A V3 hop is an exact-input `swap` with the price limit at MIN_SQRT_RATIO + 1 or
///      MAX_SQRT_RATIO - 1; its input is paid in `uniswapV3SwapCallback`, which must ask for
///      exactly that input (a pool that runs out of liquidity first asks less: the call reverts).
///      Outputs go straight into the next hop's pool when that is a V2 pair, else to this contract.
///      With `flash`, a V3 first hop runs the rest of the cycle inside its callback and is paid
///      from the cycle's output, as a V2 first hop is in `uniswapV2Call`.
///
///      Safety (issue 11): before any token moves, every hop's pair must be the CREATE2 address
///      of an allowlisted factory for the hop's sorted tokens (`setFactory`; a V3 pool: of an
///      allowlisted V3 factory for its tokens and fee tier, `setV3Factory`), so a contract
///      posing as a pair is never called. In flash mode `execute` commits to the exact call in
///      flight (pair, both output amounts, hash of the callback data) and `uniswapV2Call` is
///      honoured once, only for that commitment, and forwards only a loan that arrived; every V3
///      swap likewise commits to (pool, input owed, hash of the callback data) and
///      `uniswapV3SwapCallback` pays that input, once, to that pool only. So the
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
    /// @param feeBps   the pair's fee in basis points, or V3_HOP | the V3 pool's fee in pips
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

    /// @notice The fee word flag of a Uniswap V3 hop (calldata layout above).
    uint256 public constant V3_HOP = 1 << 24;
    uint160 internal constant MIN_SQRT_RATIO_PLUS_ONE = 4295128740;
    uint160 internal constant MAX_SQRT_RATIO_MINUS_ONE = 1461446703485210103287273052203988822378723970341;
    /// @dev Domain tag of a V3 swap commitment, so it can never satisfy `uniswapV2Call`.
    bytes32 private constant V3_TAG = keccak256("uniswapV3SwapCallback");

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
    /// @notice `pair` is not the CREATE2 pair (V3: pool) of any allowlisted factory for its hop's
    ///         tokens (and fee tier).
    error PairNotAllowed(address pair);
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
    /// @notice Sending ETH failed.
    error EthTransferFailed();

    /// @notice A cycle completed with `profit` units of `token` kept by this contract.
    event Arbitrage(address indexed token, uint256 amountIn, uint256 profit, uint256 hops);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event BeneficiaryChanged(address indexed previousBeneficiary, address indexed newBeneficiary);
    event FactorySet(address indexed factory, bytes32 initCodeHash, bool allowed);
    event V3FactorySet(address indexed factory, bytes32 initCodeHash, bool allowed);
    /// @notice `amount` of `token` (zero address: ETH) paid to the beneficiary.
    event Swept(address indexed token, address indexed beneficiary, uint256 amount);

    address public owner;
    address public pendingOwner;
    /// @notice The cold address profit may leave to; nothing else can receive funds.
    address public beneficiary;
    Factory[] private _factories;
    Factory[] private _v3Factories;

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
            if (i + 1 < n && hops[i].tokenOut != hops[i + 1].tokenIn) revert InvalidPath();
            _requireAllowedPool(hops[i]);
        }
        address token = hops[0].tokenIn;
        uint256 balanceBefore = IERC20Minimal(token).balanceOf(address(this));

        if (flash) _flashSwap(hops, amountIn, minProfit);
        else _runHops(hops, 0, amountIn);

        uint256 balanceAfter = IERC20Minimal(token).balanceOf(address(this));
        if (balanceAfter < balanceBefore || balanceAfter - balanceBefore < minProfit) {
            revert InsufficientProfit(int256(balanceAfter) - int256(balanceBefore), minProfit);
        }
        profit = balanceAfter - balanceBefore;
        emit Arbitrage(token, amountIn, profit, n);
    }

    /// @dev Borrow hop 0's output by a flash swap; the callback runs the rest and repays.
    function _flashSwap(Hop[] calldata hops, uint256 amountIn, uint256 minProfit) private {
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
    function _finishFlash(bytes calldata data, uint256 borrowed) private {
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
        _setIn(_factories, factory, initCodeHash, allowed);
        emit FactorySet(factory, initCodeHash, allowed);
    }

    /// @notice The same for a Uniswap V3 factory, whose pools are the CREATE2 addresses of
    ///         `initCodeHash` (POOL_INIT_CODE_HASH) salted by keccak(abi.encode(t0, t1, fee)).
    function setV3Factory(address factory, bytes32 initCodeHash, bool allowed) external onlyOwner {
        _setIn(_v3Factories, factory, initCodeHash, allowed);
        emit V3FactorySet(factory, initCodeHash, allowed);
    }

    /// @notice The allowlisted factories.
    function factories() external view returns (Factory[] memory) {
        return _factories;
    }

    /// @notice The allowlisted V3 factories.
    function v3Factories() external view returns (Factory[] memory) {
        return _v3Factories;
    }

    /// @notice Whether `pair` is the pair of `tokenA`/`tokenB` of an allowlisted factory.
    function isAllowedPair(address pair, address tokenA, address tokenB) public view returns (bool) {
        if (tokenA == tokenB) return false;
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        return _isCreate2Of(_factories, pair, keccak256(abi.encodePacked(t0, t1)));
    }

    /// @notice Whether `pool` is the `fee`-pip pool of `tokenA`/`tokenB` of an allowlisted V3
    ///         factory.
    function isAllowedV3Pool(address pool, address tokenA, address tokenB, uint24 fee)
        public
        view
        returns (bool)
    {
        if (tokenA == tokenB) return false;
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        return _isCreate2Of(_v3Factories, pool, keccak256(abi.encode(t0, t1, fee)));
    }

    function _setIn(Factory[] storage list, address factory, bytes32 initCodeHash, bool allowed)
        private
    {
        if (factory == address(0)) revert ZeroAddress();
        uint256 m = list.length;
        uint256 i = 0;
        while (i < m && list[i].factory != factory) ++i;
        if (allowed) {
            if (i < m) list[i].initCodeHash = initCodeHash;
            else list.push(Factory(factory, initCodeHash));
        } else if (i < m) {
            list[i] = list[m - 1];
            list.pop();
        }
    }

    function _isCreate2Of(Factory[] storage list, address pool, bytes32 salt) private view returns (bool) {
        uint256 m = list.length;
        for (uint256 i = 0; i < m; ++i) {
            Factory storage f = list[i];
            bytes32 h = keccak256(abi.encodePacked(hex"ff", f.factory, salt, f.initCodeHash));
            if (address(uint160(uint256(h))) == pool) return true;
        }
        return false;
    }

    /// @dev The hop's fee word names its kind (layout above); its pool must be allowlisted.
    function _requireAllowedPool(Hop calldata hop) private view {
        uint256 fee = hop.feeBps;
        bool allowed;
        if (fee < 10_000) {
            allowed = isAllowedPair(hop.pair, hop.tokenIn, hop.tokenOut);
        } else if (fee >= V3_HOP && fee - V3_HOP < 1_000_000) {
            allowed = isAllowedV3Pool(hop.pair, hop.tokenIn, hop.tokenOut, uint24(fee - V3_HOP));
        } else {
            revert InvalidPath();
        }
        if (!allowed) revert PairNotAllowed(hop.pair);
    }

    function _isV3(Hop memory hop) private pure returns (bool) {
        return hop.feeBps >= V3_HOP;
    }

    /// @dev What `uniswapV2Call` must see: the pair, its two output amounts and the data.
    function _commit(address pair, uint256 amount0, uint256 amount1, bytes memory data)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(pair, amount0, amount1, keccak256(data)));
    }

    /// @dev What `uniswapV3SwapCallback` must see: the pool, the input it asks, the data.
    function _commitV3(address pool, uint256 owed, bytes memory data) private pure returns (bytes32) {
        return keccak256(abi.encode(V3_TAG, pool, owed, keccak256(data)));
    }

    /// @dev Swap hops[start..] with `amountIn` of hops[start].tokenIn held here. A V2 pair takes
    ///      its input before the swap, a V3 pool in the callback: each output goes straight into
    ///      the next pool when that is a V2 pair, else (and the last one) to this contract.
    function _runHops(Hop[] memory hops, uint256 start, uint256 amountIn)
        private
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
        private
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
