// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ExecutorBase} from "./ExecutorBase.sol";

/// @title Executor with its flash commitment in transient storage (Cancun: TSTORE/TLOAD).
/// @notice The default build: the commitment costs ~200 gas and vanishes with the transaction.
contract Executor is ExecutorBase {
    bytes32 private transient _flashCommitment;

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
