// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

// Attack contracts for tests/security/test_executor_attacks.py. Never deployed outside tests.

interface IExecutorLike {
    struct Hop {
        address pair;
        address tokenIn;
        address tokenOut;
        uint256 feeBps;
    }

    function execute(Hop[] calldata hops, uint256 amountIn, uint256 minProfit, bool flash)
        external
        returns (uint256);

    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data)
        external;
}

interface IERC20Like {
    function balanceOf(address account) external view returns (uint256);

    function transfer(address to, uint256 amount) external returns (bool);
}

/// @title AttackerPair: a contract posing as a Uniswap V2 pair.
/// @notice Reports the reserves it is told to and, when flash-swapped, calls the executor back:
///         mode 0 (drain) claims to have lent `lie` of token1 and passes the data through;
///         mode 1 (twice) calls back with the exact amounts, then a second time;
///         mode 2 (execute) re-enters `execute` with the route it was given;
///         mode 3 (unpaid) calls back with the exact amounts but never sent them
///         (modes 1 and 3 do send them first when `loanToken` is set).
///         `forge` sends a callback of the caller's choosing at any time.
contract AttackerPair {
    uint112 public reserve0;
    uint112 public reserve1;
    uint8 public mode;
    uint256 public lie;
    address public loanToken;

    function setUp(uint112 r0, uint112 r1, uint8 mode_, uint256 lie_) external {
        (reserve0, reserve1, mode, lie) = (r0, r1, mode_, lie_);
    }

    /// @notice With a token set, modes 1 and 3 really send the loan (of that token) first.
    function setLoanToken(address token) external {
        loanToken = token;
    }

    function getReserves() external view returns (uint112, uint112, uint32) {
        return (reserve0, reserve1, 0);
    }

    function swap(uint256 amount0, uint256 amount1, address to, bytes calldata data) external {
        if (data.length == 0) return; // keep whatever was paid in, send nothing
        IExecutorLike executor = IExecutorLike(to);
        if (loanToken != address(0) && (mode == 1 || mode == 3)) {
            IERC20Like(loanToken).transfer(to, amount0 + amount1);
        }
        if (mode == 0) {
            executor.uniswapV2Call(msg.sender, 0, lie, data);
        } else if (mode == 1) {
            executor.uniswapV2Call(msg.sender, amount0, amount1, data);
            executor.uniswapV2Call(msg.sender, amount0, amount1, data);
        } else if (mode == 3) {
            executor.uniswapV2Call(msg.sender, amount0, amount1, data);
        } else {
            (IExecutorLike.Hop[] memory hops, uint256 amountIn, uint256 minProfit,) =
                abi.decode(data, (IExecutorLike.Hop[], uint256, uint256, uint256));
            executor.execute(hops, amountIn, minProfit, false);
        }
    }

    function forge(address executor, address sender, uint256 a0, uint256 a1, bytes calldata data)
        external
    {
        IExecutorLike(executor).uniswapV2Call(sender, a0, a1, data);
    }
}

/// @title AttackerFactory: deploys AttackerPairs at CREATE2 addresses like a V2 factory does
///        (salt keccak256(token0, token1)), so an owner who allowlists it by mistake lets its
///        pairs pass the executor's pair check: the tests show the callback commitment holds.
contract AttackerFactory {
    function createPair(address tokenA, address tokenB) external returns (address pair) {
        (address t0, address t1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
        pair = address(new AttackerPair{salt: keccak256(abi.encodePacked(t0, t1))}());
    }

    function initCodeHash() external pure returns (bytes32) {
        return keccak256(type(AttackerPair).creationCode);
    }
}

/// @title AttackerToken: an ERC20 whose balance of `victimOf` reads as a huge number minus
///        that account's balance of `mirror`, so an executor's profit check in this token
///        sees a gain exactly when the executor loses `mirror` (the old contract's drain).
///        Transfers always succeed; with a `hook` set, every transfer first calls `hook`
///        with `payload` (re-entry from inside a route) and either bubbles its revert or, with
///        `bubble` false, records the revert data in `lastRevert` and carries on.
contract AttackerToken {
    mapping(address => uint256) private _balances;
    address public mirror;
    address public victimOf;
    address public hook;
    bytes public payload;
    bool public bubble;
    bytes public lastRevert;

    function setUp(address mirror_, address victimOf_) external {
        (mirror, victimOf) = (mirror_, victimOf_);
    }

    function setHook(address hook_, bytes calldata payload_, bool bubble_) external {
        (hook, payload, bubble) = (hook_, payload_, bubble_);
    }

    function mint(address to, uint256 amount) external {
        _balances[to] += amount;
    }

    function balanceOf(address account) external view returns (uint256) {
        if (account == victimOf && mirror != address(0)) {
            return 1e30 - IERC20Like(mirror).balanceOf(account);
        }
        return _balances[account];
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        if (hook != address(0)) {
            (bool ok, bytes memory ret) = hook.call(payload);
            if (!ok && bubble) {
                assembly {
                    revert(add(ret, 32), mload(ret))
                }
            }
            if (!ok) lastRevert = ret;
        }
        uint256 have = _balances[from];
        _balances[from] = have >= amount ? have - amount : 0;
        _balances[to] += amount;
    }
}
