"""The local devnet: anvil, two real Uniswap V2 DEXes, our executor, and a seeded user flow.

Entry points: `start_anvil` / `start_anvil_detached` (anvil.py), `deploy_devnet` (deploy.py),
`run_flow` (flow.py); `mev-bot devnet up|down|flow` lands in commands.py.
"""
