// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20Minimal, IUniswapV2PairMinimal, PoolSwaps} from "./PoolSwaps.sol";

/// @title Executor: the bot's on-chain arm for cyclic arbitrage over Uniswap V2 and V3 pools.
/// @notice Runs a cycle of swaps atomically through pools of allowlisted factories and keeps
///         the profit only if it is at least `minProfit`; otherwise the whole transaction reverts.
///         The `owner` key trades, names extra trader keys (`setTrader`: one sender account
///         per nonce lane, so independent trades do not queue behind each other's nonces) and
///         may sweep profit to the cold `beneficiary` only. A trader may only `execute`.
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
abstract contract ExecutorBase is PoolSwaps {
    /// @notice An allowlisted V2 factory and the keccak256 of its pair creation code.
    struct Factory {
        address factory;
        bytes32 initCodeHash;
    }

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The caller is neither the owner nor an authorized trader.
    error NotTrader(address caller);
    /// @notice The caller is neither the owner nor the beneficiary.
    error NotOwnerOrBeneficiary(address caller);
    /// @notice The caller is not the beneficiary.
    error NotBeneficiary(address caller);
    /// @notice The caller is not the pending owner.
    error NotPendingOwner(address caller);
    /// @notice The zero address where a real one is required.
    error ZeroAddress();
    /// @notice `pair` is not the CREATE2 pair (V3: pool) of any allowlisted factory for its hop's
    ///         tokens (and fee tier).
    error PairNotAllowed(address pair);
    /// @notice Sending ETH failed.
    error EthTransferFailed();

    /// @notice A cycle completed with `profit` units of `token` kept by this contract.
    event Arbitrage(address indexed token, uint256 amountIn, uint256 profit, uint256 hops);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event BeneficiaryChanged(address indexed previousBeneficiary, address indexed newBeneficiary);
    event FactorySet(address indexed factory, bytes32 initCodeHash, bool allowed);
    event V3FactorySet(address indexed factory, bytes32 initCodeHash, bool allowed);
    /// @notice `trader` may (or with `allowed` false, may no longer) call `execute`.
    event TraderSet(address indexed trader, bool allowed);
    /// @notice `amount` of `token` (zero address: ETH) paid to the beneficiary.
    event Swept(address indexed token, address indexed beneficiary, uint256 amount);

    address public owner;
    address public pendingOwner;
    /// @notice The cold address profit may leave to; nothing else can receive funds.
    address public beneficiary;
    Factory[] private _factories;
    Factory[] private _v3Factories;
    /// @dev Counts ownership changes: traders are authorized per owner, so the traders a stolen
    ///      hot key named are out once the cold key takes the contract back.
    uint256 private _ownerEpoch;
    mapping(uint256 epoch => mapping(address trader => bool)) private _traders;

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

    modifier onlyTrader() {
        if (msg.sender != owner && !_traders[_ownerEpoch][msg.sender]) revert NotTrader(msg.sender);
        _;
    }

    modifier onlyOwnerOrBeneficiary() {
        if (msg.sender != owner && msg.sender != beneficiary) revert NotOwnerOrBeneficiary(msg.sender);
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
        onlyTrader
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
        ++_ownerEpoch; // the previous owner's traders are out with it
    }

    /// @notice Let `trader` call `execute` (or with `allowed` false, no longer): an extra hot
    ///         sender account with its own nonce sequence. It can do nothing else here.
    function setTrader(address trader, bool allowed) external onlyOwner {
        if (trader == address(0)) revert ZeroAddress();
        _traders[_ownerEpoch][trader] = allowed;
        emit TraderSet(trader, allowed);
    }

    /// @notice Whether `account` may call `execute` now (the owner always may).
    function isTrader(address account) external view returns (bool) {
        return account == owner || _traders[_ownerEpoch][account];
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

}
