#!/usr/bin/env node
// Compile the credit tokens offline with solc-js + @openzeppelin/contracts and
// write <Name>.json (ABI + bytecode) beside each source, so runtime never needs
// a compiler: CreditToken (the plain ERC-20) and CreditToken3009 (ERC-20 +
// EIP-3009, the token x402's `exact` scheme settles).
//
//   node wallet/contracts/compile.js [NODE_MODULES]
//
// NODE_MODULES defaults to build/node/chain/node_modules (tests/peers/setup.sh).
"use strict";
const fs = require("fs");
const path = require("path");

const here = __dirname;
const modules = path.resolve(process.argv[2] || path.join(here, "..", "..", "build", "node", "chain", "node_modules"));
const solc = require(path.join(modules, "solc"));

// Cancun: both anvil and the embedded py-evm chain run it.
const EVM_VERSION = "cancun";
const CONTRACTS = ["CreditToken", "CreditToken3009"];

function findImports(importPath) {
  const file = path.join(modules, importPath);
  if (fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  return { error: `not found: ${importPath}` };
}

const oz = require(path.join(modules, "@openzeppelin", "contracts", "package.json"));

function compile(name) {
  const source = `${name}.sol`;
  const input = {
    language: "Solidity",
    sources: { [source]: { content: fs.readFileSync(path.join(here, source), "utf8") } },
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
  if (errors.length) process.exit(1);

  const contract = output.contracts[source][name];
  const artifact = {
    contractName: name,
    compiler: { name: "solc-js", version: solc.version(), evmVersion: EVM_VERSION, optimizerRuns: 200 },
    openzeppelin: oz.version,
    abi: contract.abi,
    bytecode: "0x" + contract.evm.bytecode.object,
  };
  const target = path.join(here, `${name}.json`);
  fs.writeFileSync(target, JSON.stringify(artifact, null, 2) + "\n");
  process.stdout.write(`wrote ${target} (${contract.evm.bytecode.object.length / 2} bytes)\n`);
}

for (const name of CONTRACTS) compile(name);
