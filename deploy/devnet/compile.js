#!/usr/bin/env node
// Compile our contracts with the pinned solc-js into contracts/build/<Name>.json.
// Deterministic: fixed source unit names and settings, so the committed artifacts can be
// rebuilt byte for byte (tests/integration/devnet/test_contract_build.py checks it).
// Two builds of one contract (ExecutorBase.sol; the flash commitment's home is the build flag):
// Executor keeps it in transient storage (Cancun), ExecutorStorageCommit in a storage slot for
// chains without TSTORE, compiled for shanghai (no TSTORE, no MCOPY) like DevToken, so the
// whole devnet deployment runs on a pre-Cancun chain (the hyperevm profile's anvil --hardfork
// shanghai). contracts/test/*.sol are attack contracts for the tests.
// Usage: node deploy/devnet/compile.js [--out DIR]   (default DIR: contracts/build)
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const ROOT = path.resolve(__dirname, "..", "..");
// [source unit, contract name, EVM version]; imported units are listed in IMPORTS.
const CONTRACTS = [
  ["contracts/Executor.sol", "Executor", "cancun"],
  ["contracts/ExecutorStorageCommit.sol", "ExecutorStorageCommit", "shanghai"],
  ["contracts/DevToken.sol", "DevToken", "shanghai"],
  ["contracts/test/Attackers.sol", "AttackerPair", "cancun"],
  ["contracts/test/Attackers.sol", "AttackerFactory", "cancun"],
  ["contracts/test/Attackers.sol", "AttackerToken", "cancun"],
  ["contracts/test/V3Probe.sol", "V3Probe", "cancun"],
  ["contracts/test/V3Attackers.sol", "AttackerV3Pool", "cancun"],
  ["contracts/test/V3Attackers.sol", "AttackerV3Factory", "cancun"],
];
const IMPORTS = ["contracts/ExecutorBase.sol", "contracts/PoolSwaps.sol"];

function settings(evmVersion) {
  // cancun: transient storage; no prague-only opcodes are needed.
  return {
    evmVersion,
    optimizer: { enabled: true, runs: 10000 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  };
}

function read(unit) {
  return { content: fs.readFileSync(path.join(ROOT, unit), "utf8") };
}

function main() {
  const outFlag = process.argv.indexOf("--out");
  const outDir = outFlag > 0 ? path.resolve(process.argv[outFlag + 1]) : path.join(ROOT, "contracts", "build");
  const sources = {};
  const outputs = {};
  // one compilation per EVM version, of only the units built for it (a shanghai compile of a
  // unit using `transient` is an error)
  for (const version of new Set(CONTRACTS.map((c) => c[2]))) {
    const units = {};
    for (const unit of IMPORTS) units[unit] = read(unit);
    for (const [unit, , v] of CONTRACTS) if (v === version) units[unit] = sources[unit] = read(unit);
    const input = { language: "Solidity", sources: units, settings: settings(version) };
    const output = JSON.parse(solc.compile(JSON.stringify(input)));
    const errors = (output.errors || []).filter((e) => e.severity === "error");
    for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
    if (errors.length) process.exit(1);
    outputs[version] = output;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const [unit, name, version] of CONTRACTS) {
    const c = outputs[version].contracts[unit][name];
    const artifact = {
      contractName: name,
      sourceName: unit,
      sourceSha256: crypto.createHash("sha256").update(sources[unit].content).digest("hex"),
      compiler: { name: "solc-js", version: solc.version(), settings: settings(version) },
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
    process.stdout.write(`${name}: ${c.evm.deployedBytecode.object.length / 2} bytes deployed\n`);
  }
}

main();
