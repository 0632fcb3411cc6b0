"""One module per scenario; each exposes `KEY`, `TITLE` and `run(tiny) -> ScenarioResult`."""
