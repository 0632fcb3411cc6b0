"""Shared runtime of the mev-pipeline services: settings, messages, subjects, bus,
runtime, metrics, control, chain, amm, executor. Operator and devnet tooling lives in
`mev_ops` (libs/ops), which imports this package, never the other way."""
