#!/usr/bin/env node
// Compile our contracts with the pinned solc-js into contracts/build/<Name>.json.
// Deterministic: fixed source unit names and settings, so the committed artifacts can be
// rebuilt byte for byte (tests/integration/devnet/test_contract_build.py checks it).
// Executor.sol yields two builds of one contract (the flash commitment's home is the build
// flag): Executor keeps it in transient storage (Cancun), ExecutorStorageCommit in a storage
// slot for chains without TSTORE. contracts/test/*.sol are attack contracts for the tests.
// Usage: node deploy/devnet/compile.js [--out DIR]   (default DIR: contracts/build)
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const ROOT = path.resolve(__dirname, "..", "..");
// [source unit, contract name]
const CONTRACTS = [
  ["contracts/Executor.sol", "Executor"],
  ["contracts/Executor.sol", "ExecutorStorageCommit"],
  ["contracts/DevToken.sol", "DevToken"],
  ["contracts/test/Attackers.sol", "AttackerPair"],
  ["contracts/test/Attackers.sol", "AttackerFactory"],
  ["contracts/test/Attackers.sol", "AttackerToken"],
  ["contracts/test/V3Probe.sol", "V3Probe"],
];
const SETTINGS = {
  // cancun: transient storage, and what HyperEVM runs; no prague-only opcodes are needed.
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 10000 },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function main() {
  const outFlag = process.argv.indexOf("--out");
  const outDir = outFlag > 0 ? path.resolve(process.argv[outFlag + 1]) : path.join(ROOT, "contracts", "build");
  const sources = {};
  for (const [unit] of CONTRACTS) {
    sources[unit] = { content: fs.readFileSync(path.join(ROOT, unit), "utf8") };
  }
  const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings: SETTINGS })));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
  if (errors.length) process.exit(1);
  fs.mkdirSync(outDir, { recursive: true });
  for (const [unit, name] of CONTRACTS) {
    const c = output.contracts[unit][name];
    const artifact = {
      contractName: name,
      sourceName: unit,
      sourceSha256: crypto.createHash("sha256").update(sources[unit].content).digest("hex"),
      compiler: { name: "solc-js", version: solc.version(), settings: SETTINGS },
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
    process.stdout.write(`${name}: ${c.evm.deployedBytecode.object.length / 2} bytes deployed\n`);
  }
}

main();
