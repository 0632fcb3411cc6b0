// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ExecutorBase} from "./ExecutorBase.sol";

/// @title Executor with its flash commitment in an ordinary storage slot.
/// @notice For chains without TSTORE/TLOAD (HyperEVM's Cancun support is unverified), compiled
///         for shanghai so it runs before Cancun too: same API and checks; the slot is set before the flash swap and zeroed in the callback, so it
///         is zero between transactions (a reverted transaction reverts the write too).
contract ExecutorStorageCommit is ExecutorBase {
    bytes32 private _flashCommitment;

    constructor(address initialOwner, address initialBeneficiary, Factory[] memory initialFactories)
        ExecutorBase(initialOwner, initialBeneficiary, initialFactories)
    {}

    function _commitment() internal view override returns (bytes32) {
        return _flashCommitment;
    }

    function _setCommitment(bytes32 value) internal override {
        _flashCommitment = value;
    }
}
